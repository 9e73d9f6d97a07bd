import { api, graphql } from "../api";
import { el, shell, showError, table } from "../dom";
import { formatValue } from "../format";
import { HEADLINE_METRICS, strategyName } from "../results";
import type { Page } from "../types";

const PAGE_SIZE = 25;
const NEWEST = "newest";

interface Ranked {
  items: { rank: number; task_id: string; strategy: string; symbols: string[]; interval: string | null; metrics: Record<string, unknown>; created_at: string | null }[];
  total: number;
  offset: number;
  next_offset: number | null;
}

/** The caller's runs with their headline metrics: newest first (filter by state) or ranked by a metric
 * (finished runs, GET /analysis/performance), a page at a time, with a box per row to compare 2-5. */
export async function runsPage(offset: number, state: string, sort = NEWEST): Promise<void> {
  const main = shell("Runs");
  const filter = el("select", { id: "state-filter" });
  for (const s of ["", "PENDING", "STARTED", "PROGRESS", "SUCCESS", "FAILURE", "CANCELLED"]) {
    filter.append(el("option", { value: s, ...(s === state ? { selected: "" } : {}) }, s || "any state"));
  }
  const order = el("select", { id: "sort" });
  order.append(el("option", { value: NEWEST }, "newest first"));
  for (const metric of HEADLINE_METRICS) {
    for (const [sign, words] of [["-", "highest"], ["+", "lowest"]]) {
      const value = `${sign}${metric}`;
      order.append(el("option", { value, ...(value === sort ? { selected: "" } : {}) }, `${words} ${metric.replaceAll("_", " ")}`));
    }
  }
  const go = (to: number): string => `#/runs/${to}/${filter.value}/${order.value}`;
  filter.onchange = () => (location.hash = go(0));
  order.onchange = () => (location.hash = go(0));
  filter.disabled = sort !== NEWEST; // a ranking holds finished (SUCCESS) runs only
  const compare = el("button", { type: "button", id: "compare-selected" }, "Compare selected");
  const controls = el("p", { class: "controls" }, "State: ");
  controls.append(filter, " Sort: ", order, " ", compare);
  main.append(controls);
  try {
    const page = sort === NEWEST ? await newestFirst(offset, state) : await rankedBy(sort, offset);
    main.append(table(page.head, page.rows, { id: "runs" }));
    const nav = el("p", { class: "pager" }, `${page.shown ? offset + 1 : 0}-${offset + page.shown} of ${page.total} `);
    if (offset > 0) nav.append(el("a", { href: go(Math.max(0, offset - PAGE_SIZE)) }, "previous"));
    if (page.next !== null) nav.append(el("a", { href: go(page.next) }, " next"));
    main.append(nav);
    compare.onclick = () => {
      const ids = [...main.querySelectorAll<HTMLInputElement>(".pick:checked")].map((i) => i.value);
      location.hash = `#/compare/${ids.join(",")}`;
    };
  } catch (error) {
    showError(main, error);
  }
}

interface Rows {
  head: string[];
  rows: (string | Node)[][];
  shown: number;
  total: number;
  next: number | null;
}

const METRIC_HEAD = HEADLINE_METRICS.map((m) => m.replaceAll("_", " "));

function metricCells(taskId: string, metrics: Record<string, unknown> | undefined): (string | Node)[] {
  return HEADLINE_METRICS.map((m) =>
    metrics ? el("span", { "data-run": taskId, "data-metric": m, "data-value": JSON.stringify(metrics[m] ?? null) }, formatValue(metrics[m])) : "",
  );
}

const pick = (taskId: string): HTMLInputElement => el("input", { type: "checkbox", class: "pick", value: taskId });
const runLink = (taskId: string): HTMLAnchorElement => el("a", { href: `#/run/${taskId}` }, taskId.slice(0, 12));

/** GET /backtest/list's page, with the headline metrics of its finished runs from one GraphQL query. */
async function newestFirst(offset: number, state: string): Promise<Rows> {
  const query = `limit=${PAGE_SIZE}&offset=${offset}${state ? `&state=${state}` : ""}`;
  const [page, metrics] = await Promise.all([api<Page>(`/backtest/list?${query}`), pageMetrics(offset, state)]);
  const rows = page.items.map((s) => {
    const c = s.config;
    return [
      pick(s.task_id),
      runLink(s.task_id),
      s.state + (s.fraction !== null && s.state !== "SUCCESS" ? ` ${Math.round(s.fraction * 100)}%` : ""),
      c ? strategyName(c.strategy, s.strategy_ref) : "",
      c?.params ? JSON.stringify(c.params) : "",
      c ? c.symbols.join(", ") : "",
      c ? `${(c.start ?? "").slice(0, 10)} → ${(c.end ?? "").slice(0, 10)}` : "",
      ...metricCells(s.task_id, metrics.get(s.task_id)),
      s.created_at ?? "",
    ];
  });
  const head = ["", "Run", "State", "Strategy", "Params", "Symbols", "Range", ...METRIC_HEAD, "Created"];
  return { head, rows, shown: page.items.length, total: page.total, next: page.next_offset };
}

/** The metrics of the same page of runs (same order, offset and state), by task id; SUCCESS runs only. */
async function pageMetrics(offset: number, state: string): Promise<Map<string, Record<string, unknown>>> {
  const data = await graphql<{ backtests: { items: { taskId: string; metrics: Record<string, unknown> | null }[] } }>(
    "query Page($limit: Int!, $offset: Int!, $state: String) { backtests(limit: $limit, offset: $offset, state: $state) { items { taskId metrics } } }",
    { limit: PAGE_SIZE, offset, state: state || null },
  );
  return new Map(data.backtests.items.filter((i) => i.metrics).map((i) => [i.taskId, i.metrics!]));
}

/** Finished runs ranked by a metric (`-sharpe` highest first, `+sharpe` lowest first). */
async function rankedBy(sort: string, offset: number): Promise<Rows> {
  const metric = sort.slice(1);
  const query = `metric=${metric}&descending=${sort.startsWith("-")}&limit=${PAGE_SIZE}&offset=${offset}`;
  const page = await api<Ranked>(`/analysis/performance?${query}`);
  const rows = page.items.map((r) => [
    pick(r.task_id),
    runLink(r.task_id),
    String(r.rank),
    r.strategy,
    r.symbols.join(", "),
    r.interval ?? "",
    ...metricCells(r.task_id, r.metrics),
    r.created_at ?? "",
  ]);
  const head = ["", "Run", "Rank", "Strategy", "Symbols", "Interval", ...METRIC_HEAD, "Created"];
  return { head, rows, shown: page.items.length, total: page.total, next: page.next_offset };
}
