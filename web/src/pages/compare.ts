import { api } from "../api";
import { drawOverlay } from "../charts";
import { metricRows } from "../derive";
import { el, label, shell, showError, table } from "../dom";
import { formatValue } from "../format";
import { fetchResult, strategyName } from "../results";
import type { Page, Result } from "../types";

/** Compare 2-5 successful runs: equity overlaid (percent return) and metrics side by side with differences. */
export async function comparePage(ids: string[]): Promise<void> {
  const main = shell("Compare runs");
  if (ids.length < 2 || ids.length > 5) {
    await pickRuns(main, ids);
    return;
  }
  let results: Result[];
  try {
    results = await Promise.all(ids.map((id) => fetchResult(id)));
  } catch (error) {
    showError(main, error);
    return;
  }
  const names = results.map((r, i) => `${(ids[i] ?? "").slice(0, 8)} ${strategyName(r.config.strategy)} ${JSON.stringify(r.config.params ?? {})}`);
  const chart = el("div", { class: "chart", id: "compare-chart" });
  main.append(el("h2", {}, "Equity, percent return"), chart);
  const colours = drawOverlay(chart, results.map((r, i) => ({ label: (ids[i] ?? "").slice(0, 8), points: r.equity_curve })));
  const legend = el("ul", { class: "legend" });
  names.forEach((n, i) => {
    const item = el("li", {}, n);
    item.style.borderLeft = `12px solid ${colours[i]}`;
    legend.append(item);
  });
  main.append(legend);
  const rows = metricRows(results.map((r) => r.metrics)).map((row) => [
    row.name.replaceAll("_", " "),
    ...row.values.map((v, i) => {
      const cell = el("span", { "data-run": String(i), "data-metric": row.name, "data-value": JSON.stringify(v) }, formatValue(v));
      const diff = row.diffs[i];
      if (i > 0 && diff !== null && diff !== undefined && diff !== 0) {
        cell.append(el("small", { class: diff > 0 ? "up" : "down" }, ` (${diff > 0 ? "+" : ""}${formatValue(diff)})`));
      }
      return cell;
    }),
  ]);
  main.append(el("h2", {}, "Metrics (difference from the first run)"), table(["metric", ...ids.map((id) => id.slice(0, 12))], rows, { id: "compare-metrics" }));
  main.setAttribute("data-ready", "1");
}

async function pickRuns(main: HTMLElement, ids: string[]): Promise<void> {
  main.append(el("p", {}, "Pick 2 to 5 successful runs."));
  try {
    const page = await api<Page>("/backtest/list?limit=100&state=SUCCESS");
    const form = el("form", { id: "pick-runs" });
    for (const s of page.items) {
      const box = el("input", { type: "checkbox", value: s.task_id, ...(ids.includes(s.task_id) ? { checked: "" } : {}) });
      form.append(label(`${s.task_id.slice(0, 12)} ${s.config ? strategyName(s.config.strategy, s.strategy_ref) : ""} ${JSON.stringify(s.config?.params ?? {})}`, box));
    }
    form.append(el("button", { type: "submit" }, "Compare"));
    form.onsubmit = (event) => {
      event.preventDefault();
      location.hash = `#/compare/${[...form.querySelectorAll<HTMLInputElement>("input:checked")].map((i) => i.value).join(",")}`;
    };
    main.append(form);
  } catch (error) {
    showError(main, error);
  }
}
