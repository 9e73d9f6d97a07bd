import { api } from "../api";
import { OVERFITTING_NOTES } from "../derive";
import { el, label, shell, showError, table } from "../dom";
import { formatValue } from "../format";
import { type Surface, drawHeatmap } from "../heatmap";
import { HEADLINE_METRICS } from "../results";
import { openStream } from "../stream";

interface Sweep {
  sweep_id: string;
  state: string;
  counts: Record<string, number>;
  best: Record<string, unknown> | null;
  overfitting: Record<string, unknown> | null;
  search: { method: string; space: unknown; objective?: string };
  finished_at: string | null;
  strategy: string;
  symbols: string[];
  interval: string;
  created_at: string;
}

/** The caller's sweeps. */
export async function sweepsPage(): Promise<void> {
  const main = shell("Sweeps");
  try {
    const page = await api<{ sweeps: Sweep[] }>("/sweep/list?limit=100");
    main.append(
      table(
        ["Sweep", "State", "Strategy", "Method", "Symbols", "Trials done/total", "Created"],
        page.sweeps.map((s) => [
          el("a", { href: `#/sweep/${s.sweep_id}` }, s.sweep_id.slice(0, 12)),
          s.state,
          s.strategy,
          s.search.method,
          s.symbols.join(", "),
          `${s.counts.done ?? 0}/${s.counts.total ?? 0}`,
          s.created_at,
        ]),
        { id: "sweeps" },
      ),
    );
  } catch (error) {
    showError(main, error);
  }
}

/** One sweep: best trial, overfitting statistics explained, a heatmap over any two params, the trials. */
export async function sweepPage(sweepId: string): Promise<void> {
  const main = shell(`Sweep ${sweepId.slice(0, 12)}`);
  let sweep: Sweep;
  let trials: Record<string, unknown>[];
  try {
    sweep = await api<Sweep>(`/sweep/${sweepId}`);
    trials = (await api<{ trials: Record<string, unknown>[] }>(`/sweep/${sweepId}/trials?limit=1000`)).trials;
  } catch (error) {
    showError(main, error);
    return;
  }
  main.append(el("p", { id: "sweep-state" }, `${sweep.state}: ${sweep.strategy} on ${sweep.symbols.join(", ")} ${sweep.interval}, ${sweep.search.method}, ${JSON.stringify(sweep.counts)}`));
  if (sweep.finished_at === null) follow(main, sweepId, sweep);
  if (sweep.best) main.append(el("h2", {}, `Best trial (by ${sweep.search.objective ?? "the objective"})`), bestTrial(sweep.best));
  if (sweep.overfitting) main.append(el("h2", {}, "Overfitting statistics"), overfitting(sweep.overfitting));
  const paramNames = [...new Set(trials.flatMap((t) => Object.keys((t.params as Record<string, unknown>) ?? {})))];
  const metricNames = [...new Set(trials.flatMap((t) => Object.entries((t.metrics as Record<string, unknown>) ?? {}).filter(([, v]) => typeof v === "number").map(([k]) => k)))];
  const runOf = new Map(trials.map((t) => [Number(t.id), String(t.task_id ?? "")]));
  if (paramNames.length >= 2) main.append(el("h2", {}, "Heatmap"), heatmapPanel(sweepId, paramNames, metricNames, runOf));
  const shown = trials.slice(0, 200);
  const metricCols = HEADLINE_METRICS;
  main.append(
    el("h2", {}, `Trials (${trials.length})`),
    table(
      ["Trial", "State", ...paramNames, ...metricCols, "Run"],
      shown.map((t) => {
        const p = (t.params as Record<string, unknown>) ?? {};
        const m = (t.metrics as Record<string, unknown>) ?? {};
        const task = String(t.task_id ?? "");
        return [String(t.id), String(t.state), ...paramNames.map((n) => formatValue(p[n])), ...metricCols.map((n) => formatValue(m[n])), task ? el("a", { href: `#/run/${task}` }, task.slice(0, 8)) : ""];
      }),
      { id: "trials" },
    ),
  );
}

/** The best trial: its params, headline metrics and a link to its run. */
function bestTrial(best: Record<string, unknown>): HTMLTableElement {
  const params = (best.params as Record<string, unknown>) ?? {};
  const metrics = (best.metrics as Record<string, unknown>) ?? {};
  const task = String(best.task_id ?? "");
  const names = Object.keys(params);
  return table(
    ["Trial", ...names, ...HEADLINE_METRICS, "Run"],
    [[String(best.id), ...names.map((n) => formatValue(params[n])), ...HEADLINE_METRICS.map((m) => formatValue(metrics[m])), task ? el("a", { href: `#/run/${task}` }, task.slice(0, 8)) : ""]],
    { id: "best" },
  );
}

function overfitting(stats: Record<string, unknown>): HTMLDListElement {
  const list = el("dl", { class: "stats", id: "overfitting" });
  for (const [key, value] of Object.entries(stats)) {
    const note = OVERFITTING_NOTES[key];
    list.append(el("dt", {}, `${key.replaceAll("_", " ")}: ${value !== null && typeof value === "object" ? JSON.stringify(value) : formatValue(value)}`));
    if (note) list.append(el("dd", {}, note));
  }
  return list;
}

function heatmapPanel(sweepId: string, params: string[], metrics: string[], runOf: Map<number, string>): HTMLElement {
  const panel = el("section", { id: "heatmap-panel" });
  const pick = (name: string, options: string[], chosen: string): HTMLSelectElement => {
    const select = el("select", { name });
    for (const o of options) select.append(el("option", { value: o, ...(o === chosen ? { selected: "" } : {}) }, o));
    return select;
  };
  const x = pick("x", params, params[0] ?? "");
  const y = pick("y", params, params[1] ?? "");
  const metric = pick("metric", metrics, metrics.includes("sharpe") ? "sharpe" : (metrics[0] ?? ""));
  const canvas = el("canvas", { id: "heatmap", class: "heatmap" });
  const info = el("p", { id: "heatmap-info" }, "hover a cell; click it to open its run");
  const controls = el("div", { class: "controls" });
  controls.append(label("x", x), label("y", y), label("metric", metric));
  panel.append(controls, canvas, info);
  let lookup: ReturnType<typeof drawHeatmap> | null = null;
  const draw = async (): Promise<void> => {
    try {
      const surface = await api<Surface>(`/sweep/${sweepId}/surface?x=${x.value}&y=${y.value}&metric=${metric.value}`);
      lookup = drawHeatmap(canvas, surface);
      canvas.setAttribute("data-drawn", `${surface.x.values.length}x${surface.y.values.length}`);
      canvas.setAttribute("data-axes", `${x.value},${y.value},${metric.value}`);
    } catch (error) {
      info.textContent = String((error as Error).message);
    }
  };
  for (const s of [x, y, metric]) s.onchange = () => void draw();
  canvas.onmousemove = (event) => {
    const cell = lookup?.(event.offsetX, event.offsetY);
    info.textContent = cell ? `${x.value}=${String(cell.x)}, ${y.value}=${String(cell.y)}: ${metric.value} ${formatValue(cell.value)} (trial ${cell.trial ?? "—"})` : "";
    info.setAttribute("data-trial", cell ? String(cell.trial ?? "") : "");
    info.setAttribute("data-value", cell ? JSON.stringify(cell.value) : "");
  };
  canvas.onclick = (event) => {
    const trial = lookup?.(event.offsetX, event.offsetY)?.trial;
    const task = trial === null || trial === undefined ? "" : runOf.get(trial);
    if (task) location.hash = `#/run/${task}`;
  };
  queueMicrotask(() => void draw());
  return panel;
}

function ended(counts: Record<string, number>): number {
  return (counts.done ?? 0) + (counts.failed ?? 0) + (counts.skipped ?? 0) + (counts.cancelled ?? 0);
}

/** A running sweep: counts and each ended trial live over WS /sweep/stream/{id}, a Cancel button; the
 * page is drawn again (heatmap, statistics) once the sweep has finished. */
function follow(main: HTMLElement, sweepId: string, sweep: Sweep): void {
  const bar = el("progress", { id: "sweep-progress", max: String(sweep.counts.total ?? 1), value: String(ended(sweep.counts)) });
  const counts = el("span", { id: "sweep-counts" }, JSON.stringify(sweep.counts));
  const cancel = el("button", { type: "button", id: "cancel-sweep" }, "Cancel sweep");
  const log = el("ol", { id: "trial-events" });
  const line = el("p", { class: "live" });
  line.append(bar, counts, " ", cancel);
  main.append(line, el("h2", {}, "Trials as they end (live)"), log);
  cancel.onclick = async () => {
    try {
      await api(`/sweep/${sweepId}/cancel`, { method: "POST" });
      cancel.disabled = true;
    } catch (error) {
      showError(main, error);
    }
  };
  openStream(
    `/sweep/stream/${sweepId}`,
    (frame) => {
      if (frame.type === "trial") {
        const t = frame.trial as Record<string, unknown>;
        const sharpe = (t.metrics as Record<string, unknown> | null)?.sharpe;
        log.append(el("li", { "data-trial": String(t.id) }, `trial ${String(t.id)} ${String(t.state)} ${JSON.stringify(t.params)} sharpe ${formatValue(sharpe)}`));
      } else if (frame.type === "status") {
        const status = frame.sweep as Sweep;
        bar.max = status.counts.total ?? 1;
        bar.value = ended(status.counts);
        counts.textContent = `${status.state} ${JSON.stringify(status.counts)}`;
        if (status.finished_at !== null) void sweepPage(sweepId);
      }
    },
    () => undefined,
  );
}
