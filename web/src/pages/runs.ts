import { api } from "../api";
import { el, shell, showError, table } from "../dom";
import { strategyName } from "../results";
import type { Page } from "../types";

const PAGE_SIZE = 25;

/** The caller's runs, newest first, with a box per row to compare 2-5 of them. */
export async function runsPage(offset: number, state: string): Promise<void> {
  const main = shell("Runs");
  const filter = el("select", { id: "state-filter" });
  for (const s of ["", "PENDING", "STARTED", "PROGRESS", "SUCCESS", "FAILURE", "CANCELLED"]) {
    const option = el("option", { value: s }, s || "any state");
    if (s === state) option.selected = true;
    filter.append(option);
  }
  filter.onchange = () => (location.hash = `#/runs/0/${filter.value}`);
  const compare = el("button", { type: "button", id: "compare-selected" }, "Compare selected");
  main.append(el("p", {}, "State: "), filter, compare);
  try {
    const query = `limit=${PAGE_SIZE}&offset=${offset}${state ? `&state=${state}` : ""}`;
    const page = await api<Page>(`/backtest/list?${query}`);
    const rows = page.items.map((s) => {
      const c = s.config;
      const pick = el("input", { type: "checkbox", class: "pick", value: s.task_id });
      return [
        pick,
        el("a", { href: `#/run/${s.task_id}` }, s.task_id.slice(0, 12)),
        s.state + (s.fraction !== null && s.state !== "SUCCESS" ? ` ${Math.round(s.fraction * 100)}%` : ""),
        c ? strategyName(c.strategy, s.strategy_ref) : "",
        c?.params ? JSON.stringify(c.params) : "",
        c ? c.symbols.join(", ") : "",
        c ? `${(c.start ?? "").slice(0, 10)} → ${(c.end ?? "").slice(0, 10)}` : "",
        s.created_at ?? "",
      ];
    });
    main.append(table(["", "Run", "State", "Strategy", "Params", "Symbols", "Range", "Created"], rows, { id: "runs" }));
    const nav = el("p", { class: "pager" }, `${page.items.length ? page.offset + 1 : 0}-${page.offset + page.items.length} of ${page.total} `);
    if (offset > 0) nav.append(el("a", { href: `#/runs/${Math.max(0, offset - PAGE_SIZE)}/${state}` }, "previous"));
    if (page.next_offset !== null) nav.append(el("a", { href: `#/runs/${page.next_offset}/${state}` }, " next"));
    main.append(nav);
    compare.onclick = () => {
      const ids = [...main.querySelectorAll<HTMLInputElement>(".pick:checked")].map((i) => i.value);
      location.hash = `#/compare/${ids.join(",")}`;
    };
  } catch (error) {
    showError(main, error);
  }
}
