import { api } from "../api";
import { drawEquity } from "../charts";
import { el, shell, showError, table } from "../dom";
import { formatValue } from "../format";
import { HEADLINE_METRICS } from "../results";
import type { EquityPoint } from "../types";
import { metricsList } from "./run";

interface Window {
  start: string;
  end: string;
}
interface FoldStatus {
  fold: number;
  state: string;
  sweep_id: string | null;
  test_task_id: string | null;
  failure: string | null;
}
interface WalkForward {
  walkforward_id: string;
  state: string;
  counts: Record<string, number>;
  folds: FoldStatus[];
  strategy: string;
  symbols: string[];
  interval: string;
  failure: string | null;
  created_at: string;
  finished_at: string | null;
}
interface WalkForwardResult {
  folds: { train: Window; test: Window; params: Record<string, unknown> | null; in_sample: Record<string, unknown> | null; out_of_sample: Record<string, unknown> | null; trades: number }[];
  oos: { metrics: Record<string, unknown>; equity: EquityPoint[] };
  efficiency: number | null;
}

const POLL_MS = 2000;
const EFFICIENCY_NOTE =
  "Walk-forward efficiency: the stitched out-of-sample CAGR over the mean in-sample CAGR of the chosen params; near 1 the params kept out of sample what they earned in sample, near 0 or below they did not (no value when the mean in-sample CAGR is not above 0).";

/** The caller's walk-forwards. */
export async function walkForwardsPage(): Promise<void> {
  const main = shell("Walk-forward");
  try {
    const page = await api<{ walkforwards: WalkForward[] }>("/walkforward/list?limit=100");
    main.append(
      table(
        ["Walk-forward", "State", "Strategy", "Symbols", "Folds done/total", "Created"],
        page.walkforwards.map((w) => [
          el("a", { href: `#/walkforward/${w.walkforward_id}` }, w.walkforward_id.slice(0, 12)),
          w.state,
          w.strategy,
          `${w.symbols.join(", ")} ${w.interval}`,
          `${w.counts.done ?? 0}/${w.counts.total ?? 0}`,
          w.created_at,
        ]),
        { id: "walkforwards" },
      ),
    );
  } catch (error) {
    showError(main, error);
  }
}

/** One walk-forward: its folds' progress until it ends, then the folds table (windows, params, in- and
 * out-of-sample metrics), the stitched out-of-sample curve and its metrics, and the efficiency. */
export async function walkForwardPage(id: string): Promise<void> {
  const main = shell(`Walk-forward ${id.slice(0, 12)}`);
  let status: WalkForward;
  try {
    status = await api<WalkForward>(`/walkforward/${id}`);
  } catch (error) {
    showError(main, error);
    return;
  }
  main.append(el("p", { id: "wf-state" }, `${status.state}: ${status.strategy} on ${status.symbols.join(", ")} ${status.interval}, folds ${status.counts.done ?? 0}/${status.counts.total ?? 0} done${status.failure ? `: ${status.failure}` : ""}`));
  if (status.finished_at === null) return follow(main, id);
  if (status.state !== "SUCCESS") {
    main.append(foldStates(status));
    return;
  }
  let result: WalkForwardResult;
  try {
    result = await api<WalkForwardResult>(`/walkforward/${id}/result`);
  } catch (error) {
    showError(main, error);
    return;
  }
  main.append(el("h2", {}, "Efficiency"));
  const efficiency = el("p", { id: "efficiency", "data-value": JSON.stringify(result.efficiency) }, formatValue(result.efficiency));
  main.append(efficiency, el("p", { class: "note" }, EFFICIENCY_NOTE));
  const chart = el("div", { class: "chart", id: "wf-equity" });
  main.append(el("h2", {}, "Stitched out-of-sample equity (each fold's test window, in order)"), chart);
  drawEquity(chart, result.oos.equity);
  main.append(el("h2", {}, "Out-of-sample metrics"), metricsList(result.oos.metrics));
  main.append(el("h2", {}, `Folds (${result.folds.length})`), foldsTable(result, status));
  main.setAttribute("data-ready", "1");
}

const day = (iso: string): string => iso.slice(0, 10);

function foldsTable(result: WalkForwardResult, status: WalkForward): HTMLTableElement {
  const side = (m: Record<string, unknown> | null, name: string): HTMLElement =>
    el("span", { "data-metric": name, "data-value": JSON.stringify(m?.[name] ?? null) }, formatValue(m?.[name]));
  const head = ["Fold", "Train", "Test", "Params"];
  for (const m of HEADLINE_METRICS) head.push(`${m.replaceAll("_", " ")} in`, "out");
  head.push("Sweep", "Test run");
  const rows = result.folds.map((f, i) => {
    const fold = status.folds[i];
    const cells: (string | Node)[] = [String(i), `${day(f.train.start)} → ${day(f.train.end)}`, `${day(f.test.start)} → ${day(f.test.end)}`, f.params ? JSON.stringify(f.params) : "no eligible trial"];
    for (const m of HEADLINE_METRICS) {
      const inside = side(f.in_sample, m);
      inside.dataset.side = "in";
      const outside = side(m === "trade_count" ? { trade_count: f.trades } : f.out_of_sample, m); // the test run's trades
      outside.dataset.side = "out";
      cells.push(inside, outside);
    }
    cells.push(
      fold?.sweep_id ? el("a", { href: `#/sweep/${fold.sweep_id}` }, fold.sweep_id.slice(0, 8)) : "",
      fold?.test_task_id ? el("a", { href: `#/run/${fold.test_task_id}` }, fold.test_task_id.slice(0, 8)) : "",
    );
    return cells;
  });
  return table(head, rows, { id: "folds" });
}

function foldStates(status: WalkForward): HTMLTableElement {
  return table(
    ["Fold", "State", "Sweep", "Failure"],
    status.folds.map((f) => [String(f.fold), f.state, f.sweep_id ? el("a", { href: `#/sweep/${f.sweep_id}` }, f.sweep_id.slice(0, 8)) : "", f.failure ?? ""]),
    { id: "fold-states" },
  );
}

/** A running walk-forward: each fold's state, polled, with a Cancel button; drawn again once it ends. */
function follow(main: HTMLElement, id: string): void {
  const cancel = el("button", { type: "button", id: "cancel-walkforward" }, "Cancel walk-forward");
  const states = el("section", { id: "wf-live" });
  main.append(cancel, states);
  cancel.onclick = async () => {
    try {
      await api(`/walkforward/${id}/cancel`, { method: "POST" });
      cancel.disabled = true;
    } catch (error) {
      showError(main, error);
    }
  };
  const poll = async (): Promise<void> => {
    if (location.hash !== `#/walkforward/${id}`) return; // the user went elsewhere
    try {
      const status = await api<WalkForward>(`/walkforward/${id}`);
      if (status.finished_at !== null) return void walkForwardPage(id);
      states.replaceChildren(foldStates(status));
    } catch (error) {
      showError(main, error);
      return;
    }
    window.setTimeout(() => void poll(), POLL_MS);
  };
  void poll();
}
