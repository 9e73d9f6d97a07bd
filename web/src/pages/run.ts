import { api, session } from "../api";
import { drawCandles, drawEquity } from "../charts";
import { METRIC_NOTES, monthlyReturns, tradeMarkers } from "../derive";
import { el, errorText, shell, showError, table } from "../dom";
import { formatValue, tradesCsv } from "../format";
import { fetchResult, strategyName } from "../results";
import { openStream } from "../stream";
import { type Result, type Status, TERMINAL } from "../types";

/** One run: live progress over the WebSocket with cancel while it runs, then its result. */
export async function runPage(taskId: string): Promise<void> {
  const main = shell(`Run ${taskId.slice(0, 12)}`);
  let status: Status;
  try {
    status = await api<Status>(`/backtest/status/${taskId}`);
  } catch (error) {
    showError(main, error);
    return;
  }
  const c = status.config;
  main.append(
    el("p", { class: "config" }, c ? `${strategyName(c.strategy, status.strategy_ref)} ${JSON.stringify(c.params ?? {})} on ${c.symbols.join(", ")} ${c.interval ?? ""}` : ""),
  );
  const panel = el("section", { id: "live" });
  main.append(panel);
  const body = el("section", { id: "result" });
  main.append(body);
  if (status.state === "SUCCESS") return renderResult(body, taskId);
  if (TERMINAL.has(status.state)) return ended(panel, status.state, status.failure?.message);
  follow(panel, body, taskId, status);
}

function follow(panel: HTMLElement, body: HTMLElement, taskId: string, status: Status): void {
  const state = el("strong", { id: "state" }, status.state);
  const bar = el("progress", { id: "progress", max: "1", value: String(status.fraction ?? 0) });
  const stage = el("span", { id: "stage" }, status.stage ?? "");
  const cancel = el("button", { type: "button", id: "cancel" }, "Cancel");
  const log = el("ol", { id: "events" });
  const line = el("p", { class: "live" }, "State: ");
  line.append(state, bar, stage, " ", cancel);
  panel.append(line, el("h2", {}, "Events (live)"), log);
  cancel.onclick = async () => {
    try {
      await api(`/backtest/cancel/${taskId}`, { method: "POST" });
      cancel.disabled = true;
    } catch (error) {
      showError(panel, error);
    }
  };
  let done = false;
  openStream(
    `/backtest/stream/${taskId}`,
    (frame) => {
      if (frame.error) return showError(panel, (frame.error as { message: string }).message);
      const s = String(frame.state ?? "");
      const fraction = typeof frame.fraction === "number" ? frame.fraction : null;
      state.textContent = s;
      if (fraction !== null) bar.value = fraction;
      if (frame.stage) stage.textContent = String(frame.stage);
      log.append(el("li", { "data-state": s, "data-seq": String(frame.seq ?? "") }, `${s}${fraction !== null ? ` ${Math.round(fraction * 100)}%` : ""}${frame.stage ? ` ${String(frame.stage)}` : ""}`));
      if (TERMINAL.has(s)) {
        done = true;
        cancel.disabled = true;
        bar.value = s === "SUCCESS" ? 1 : bar.value;
        if (s === "SUCCESS") void renderResult(body, taskId);
        else ended(panel, s, (frame.failure as { message?: string } | undefined)?.message);
      }
    },
    (code) => {
      if (!done && code !== 1000) panel.append(el("p", { class: "error", role: "alert" }, `the stream closed (${code}); reload to follow again`));
    },
  );
}

function ended(panel: HTMLElement, state: string, message?: string): void {
  panel.append(el("p", { id: "ended", class: state === "CANCELLED" ? "" : "error" }, `ended ${state}${message ? `: ${message}` : ""}`));
}

async function renderResult(body: HTMLElement, taskId: string): Promise<void> {
  let result: Result;
  try {
    result = await fetchResult(taskId);
  } catch (error) {
    body.append(el("p", { class: "error", role: "alert" }, errorText(error)));
    return;
  }
  performance.mark("result-fetched");
  const chart = el("div", { class: "chart", id: "equity-chart" });
  body.append(el("h2", {}, "Equity and drawdown"), chart);
  drawEquity(chart, result.equity_curve);
  performance.mark("chart-set");
  body.append(el("h2", {}, "Metrics"), metricsList(result.metrics));
  body.append(el("h2", {}, "Monthly returns, %"), monthlyTable(result.equity_curve));
  const symbolKeys = Object.keys(result.per_symbol[0] ?? {});
  body.append(el("h2", {}, "Per symbol"), table(symbolKeys, result.per_symbol.map((r) => symbolKeys.map((k) => formatValue(r[k]))), { id: "per-symbol" }));
  const download = el("a", { id: "trades-csv", download: `trades-${taskId}.csv` }, "Download trades CSV");
  download.setAttribute("href", URL.createObjectURL(new Blob([tradesCsv(result.trades)], { type: "text/csv" })));
  const report = el("button", { type: "button", id: "report" }, "HTML report");
  report.onclick = async () => {
    const response = await fetch(`/backtest/${taskId}/report.html`, { headers: { Authorization: `Bearer ${session()?.token ?? ""}` } });
    window.open(URL.createObjectURL(await response.blob()), "_blank");
  };
  const compare = el("a", { href: `#/compare/${taskId}` }, "Compare with…");
  body.append(el("h2", {}, `Trades (${result.trades.length})`), download, " ", report, " ", compare);
  const tradeKeys = Object.keys(result.trades[0] ?? {});
  const shown = result.trades.slice(0, 500);
  body.append(table(tradeKeys, shown.map((t) => tradeKeys.map((k) => formatValue(t[k]))), { id: "trades" }));
  if (result.trades.length > shown.length) body.append(el("p", {}, `first ${shown.length} shown; the CSV has all ${result.trades.length}`));
  performance.mark("tables-built");
  void candles(body, taskId, result);
  body.setAttribute("data-ready", "1");
}

/** Metrics as a definition list: the formatted value shown, the exact value in data-value, under each
 * name its convention in one line. */
export function metricsList(metrics: Record<string, unknown>): HTMLDListElement {
  const list = el("dl", { class: "metrics", id: "metrics" });
  for (const [name, value] of Object.entries(metrics)) {
    const term = el("dt", {}, name.replaceAll("_", " "));
    const note = METRIC_NOTES[name];
    if (note) term.append(el("small", { class: "note" }, note));
    list.append(term, el("dd", { "data-metric": name, "data-value": JSON.stringify(value ?? null) }, formatValue(value)));
  }
  return list;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function monthlyTable(curve: Result["equity_curve"]): HTMLTableElement {
  const byYear = new Map<number, Map<number, number>>();
  for (const m of monthlyReturns(curve)) {
    if (!byYear.has(m.year)) byYear.set(m.year, new Map());
    byYear.get(m.year)!.set(m.month, m.pct);
  }
  const rows = [...byYear].map(([year, months]) => [
    String(year),
    ...MONTHS.map((_, i) => {
      const pct = months.get(i + 1);
      return pct === undefined ? "" : el("span", { class: pct >= 0 ? "up" : "down" }, pct.toFixed(2));
    }),
  ]);
  return table(["Year", ...MONTHS], rows, { id: "monthly" });
}

/** Candlesticks of each symbol (the run's interval and range) with its trades' entries and exits. */
async function candles(body: HTMLElement, taskId: string, result: Result): Promise<void> {
  const c = result.config;
  const section = el("section", { id: "candles" });
  body.append(el("h2", {}, "Candles and trades"), section);
  for (const symbol of c.symbols.slice(0, 10)) {
    const query = new URLSearchParams({ interval: c.interval ?? "1d", limit: "20000" });
    if (c.start) query.set("start", c.start);
    if (c.end) query.set("end", c.end);
    try {
      const page = await api<{ items: { open_time: string; open: number; high: number; low: number; close: number }[] }>(`/symbol/${symbol}/candles?${query}`);
      const chart = el("div", { class: "chart", "data-symbol": symbol });
      section.append(el("h3", {}, symbol), chart);
      drawCandles(chart, page.items, tradeMarkers(result.trades, symbol));
    } catch (error) {
      showError(section, error);
    }
  }
  section.setAttribute("data-ready", taskId);
}
