import "./style.css";
import { ApiError, api, session, signIn, signOut } from "./api";
import { drawEquity } from "./charts";
import { formatValue, tradesCsv } from "./format";

interface Status {
  task_id: string;
  state: string;
  fraction: number | null;
  config: { strategy: unknown; params?: Record<string, unknown>; symbols: string[]; start?: string; end?: string } | null;
  created_at: string | null;
}
interface Page {
  items: Status[];
  total: number;
  offset: number;
  next_offset: number | null;
}
interface Results {
  task_id: string;
  result: {
    metrics: Record<string, unknown>;
    per_symbol: Record<string, unknown>[];
    equity_curve: { time: string; equity: number }[];
    trades: Record<string, unknown>[];
  };
}

const app = document.querySelector<HTMLDivElement>("#app")!;
const PAGE_SIZE = 25;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text = ""): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

function table(headers: string[], rows: (string | Node)[][]): HTMLTableElement {
  const t = el("table");
  const head = t.createTHead().insertRow();
  for (const h of headers) head.append(el("th", {}, h));
  const body = t.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    for (const cell of row) {
      const td = tr.insertCell();
      if (typeof cell === "string") td.textContent = cell;
      else td.append(cell);
    }
  }
  return t;
}

function strategyName(strategy: unknown): string {
  if (typeof strategy === "string") return strategy;
  if (strategy && typeof strategy === "object") {
    const s = strategy as Record<string, unknown>;
    return String(s.name ?? s.entry ?? s.path ?? "uploaded");
  }
  return "?";
}

function shell(title: string): HTMLElement {
  const current = session();
  app.replaceChildren();
  const header = el("header");
  header.append(el("a", { href: "#/runs" }, "Runs"));
  header.append(el("span", { class: "who" }, current ? `${current.user} (${current.role})` : ""));
  const out = el("button", { type: "button", id: "sign-out" }, "Sign out");
  out.onclick = signOut;
  header.append(out);
  const main = el("main");
  main.append(el("h1", {}, title));
  app.append(header, main);
  return main;
}

function showError(where: HTMLElement, error: unknown): void {
  const message = error instanceof ApiError ? error.message : String(error);
  where.append(el("p", { class: "error", role: "alert" }, message));
}

function loginPage(): void {
  app.replaceChildren();
  const form = el("form", { class: "login" });
  form.append(el("h1", {}, "Sign in"));
  const user = el("input", { name: "username", autocomplete: "username", required: "" });
  const pass = el("input", { name: "password", type: "password", autocomplete: "current-password", required: "" });
  const label = (text: string, input: HTMLElement): HTMLLabelElement => {
    const l = el("label", {}, text);
    l.append(input);
    return l;
  };
  const message = el("p", { class: "error", role: "alert" });
  form.append(label("User", user), label("Password", pass), el("button", { type: "submit" }, "Sign in"), message);
  form.onsubmit = async (event) => {
    event.preventDefault();
    message.textContent = "";
    try {
      await signIn(user.value, pass.value);
      location.hash = "#/runs";
    } catch (error) {
      message.textContent = error instanceof ApiError ? error.message : String(error);
    }
  };
  app.append(form);
}

async function runsPage(offset: number): Promise<void> {
  const main = shell("Runs");
  try {
    const page = await api<Page>(`/backtest/list?limit=${PAGE_SIZE}&offset=${offset}`);
    const rows = page.items.map((s) => {
      const link = el("a", { href: `#/result/${s.task_id}` }, s.task_id.slice(0, 12));
      const c = s.config;
      return [
        link,
        s.state,
        c ? strategyName(c.strategy) : "",
        c?.params ? JSON.stringify(c.params) : "",
        c ? c.symbols.join(", ") : "",
        c ? `${c.start ?? ""} → ${c.end ?? ""}` : "",
        s.created_at ?? "",
      ];
    });
    main.append(table(["Run", "State", "Strategy", "Params", "Symbols", "Range", "Created"], rows));
    const nav = el("p", { class: "pager" }, `${page.offset + 1}-${page.offset + page.items.length} of ${page.total} `);
    if (offset > 0) nav.append(el("a", { href: `#/runs/${Math.max(0, offset - PAGE_SIZE)}` }, "previous"));
    if (page.next_offset !== null) nav.append(el("a", { href: `#/runs/${page.next_offset}` }, " next"));
    main.append(nav);
  } catch (error) {
    showError(main, error);
  }
}

async function resultPage(taskId: string): Promise<void> {
  const main = shell(`Run ${taskId.slice(0, 12)}`);
  try {
    const body = await api<Results>(`/backtest/results/${taskId}?trades_limit=5000&equity_limit=20000`);
    const { result } = body;
    const chart = el("div", { class: "chart", id: "equity-chart" });
    main.append(el("h2", {}, "Equity and drawdown"), chart);
    drawEquity(chart, result.equity_curve);
    main.append(el("h2", {}, "Metrics"));
    const metrics = el("dl", { class: "metrics" });
    for (const [name, value] of Object.entries(result.metrics)) {
      metrics.append(el("dt", {}, name.replaceAll("_", " ")), el("dd", { "data-metric": name }, formatValue(value)));
    }
    main.append(metrics);
    const symbolKeys = Object.keys(result.per_symbol[0] ?? {});
    main.append(el("h2", {}, "Per symbol"), table(symbolKeys, result.per_symbol.map((r) => symbolKeys.map((k) => formatValue(r[k])))));
    const download = el("a", { id: "trades-csv", download: `trades-${taskId}.csv` }, "Download trades CSV");
    download.setAttribute("href", URL.createObjectURL(new Blob([tradesCsv(result.trades)], { type: "text/csv" })));
    const report = el("button", { type: "button", id: "report" }, "HTML report");
    report.onclick = async () => {
      const current = session();
      const response = await fetch(`/backtest/${taskId}/report.html`, { headers: { Authorization: `Bearer ${current?.token ?? ""}` } });
      const url = URL.createObjectURL(await response.blob());
      window.open(url, "_blank");
    };
    main.append(el("h2", {}, `Trades (${result.trades.length})`), download, report);
    const tradeKeys = Object.keys(result.trades[0] ?? {});
    main.append(table(tradeKeys, result.trades.slice(0, 500).map((t) => tradeKeys.map((k) => formatValue(t[k])))));
  } catch (error) {
    showError(main, error);
  }
}

function route(): void {
  const hash = location.hash || "#/runs";
  if (!session() && hash !== "#/login") {
    location.hash = "#/login";
    return;
  }
  const [, page, arg] = hash.split("/");
  if (page === "login") loginPage();
  else if (page === "result" && arg) void resultPage(arg);
  else void runsPage(Number(arg ?? 0) || 0);
}

window.addEventListener("hashchange", route);
route();
