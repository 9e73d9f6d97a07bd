import { ApiError, api, session } from "../api";
import { el, label, shell, showError, showFieldError } from "../dom";
import { type ParamInfo, boundsText, dateToUtc, inputAttrs, paramValue, paramsFromDefaults } from "../params";

interface StrategyList {
  builtins: { name: string; description: string; params: ParamInfo[] }[];
  items: { name: string; version: number; description: string; params: Record<string, unknown> }[];
}
interface Coverage {
  first: string;
  last: string;
  count: number;
  gaps: number;
  missing: number;
}
interface SymbolList {
  items: { symbol: string; coverage: Record<string, Coverage> }[];
}

/** The New-run form: strategy, a form of its declared params, symbols with coverage, range and costs. */
export async function newRunPage(preselect: string): Promise<void> {
  const main = shell("New run");
  let strategies: StrategyList;
  let symbols: SymbolList;
  try {
    [strategies, symbols] = await Promise.all([api<StrategyList>("/strategy/list?limit=200"), api<SymbolList>("/symbol/list?limit=200")]);
  } catch (error) {
    showError(main, error);
    return;
  }
  const form = el("form", { id: "new-run", class: "form" });
  const viewer = session()?.role === "viewer";
  if (viewer) main.append(el("p", { id: "viewer-note", class: "notice" }, "Your role is viewer: you can look at runs but not submit them."));

  const picker = el("select", { name: "strategy", id: "strategy", "data-field": "strategy" });
  const specs = new Map<string, { params: ParamInfo[]; description: string }>();
  const builtins = el("optgroup", { label: "Built-in" });
  for (const b of strategies.builtins) {
    specs.set(`builtin:${b.name}`, { params: b.params, description: b.description });
    builtins.append(el("option", { value: `builtin:${b.name}` }, b.name));
  }
  picker.append(builtins);
  if (strategies.items.length) {
    const mine = el("optgroup", { label: "Uploaded" });
    for (const s of strategies.items) {
      specs.set(`user:${s.name}`, { params: paramsFromDefaults(s.params), description: s.description });
      mine.append(el("option", { value: `user:${s.name}` }, `${s.name} (v${s.version})`));
    }
    picker.append(mine);
  }
  if (preselect && specs.has(preselect)) picker.value = preselect;
  const about = el("p", { class: "about" });
  const params = el("fieldset", { id: "params", "data-field": "params" });
  const showParams = async (): Promise<void> => {
    const spec = specs.get(picker.value);
    if (spec && picker.value.startsWith("user:") && !declared.has(picker.value)) {
      try {
        spec.params = (await api<{ params: ParamInfo[] }>(`/strategy/${picker.value.slice(5)}/params`)).params;
        declared.add(picker.value);
      } catch (error) {
        showError(params, error);
      }
    }
    about.textContent = spec?.description.split("\n")[0] ?? "";
    params.replaceChildren(el("legend", {}, "Parameters"));
    for (const p of spec?.params ?? []) {
      const input = el("input", { name: `param-${p.name}`, "data-field": `params.${p.name}`, "data-type": p.type, ...inputAttrs(p) });
      params.append(label(p.name, input, [p.type, boundsText(p), p.doc ?? ""].filter(Boolean).join(" · ")));
    }
  };
  const declared = new Set<string>(); // uploaded strategies whose declared params were read
  picker.onchange = () => void showParams();
  await showParams();

  const symbolBox = el("fieldset", { id: "symbols", "data-field": "symbols" });
  symbolBox.append(el("legend", {}, "Symbols (stored coverage)"));
  const intervals = new Set<string>();
  symbols.items.forEach((s, i) => {
    const box = el("input", { type: "checkbox", name: "symbol", value: s.symbol, ...(i === 0 ? { checked: "" } : {}) });
    const cover = Object.entries(s.coverage)
      .map(([iv, c]) => {
        intervals.add(iv);
        return `${iv}: ${c.first.slice(0, 10)} → ${c.last.slice(0, 10)}, ${c.count} bars${c.gaps ? `, ${c.gaps} gap(s)` : ""}`;
      })
      .join("; ");
    const row = el("label", { class: "inline" });
    row.append(box, ` ${s.symbol} `, el("small", {}, cover));
    symbolBox.append(row);
  });
  const interval = el("select", { name: "interval", "data-field": "interval" });
  for (const iv of [...intervals].sort()) interval.append(el("option", { value: iv }, iv));
  const start = el("input", { type: "date", name: "start", "data-field": "start", value: "2018-01-01" });
  const end = el("input", { type: "date", name: "end", "data-field": "end", value: "2020-01-01" });
  const cash = el("input", { type: "number", name: "cash", step: "any", min: "0", value: "1000000", "data-field": "cash" });
  const maker = el("input", { type: "number", name: "maker", step: "any", min: "0", max: "0.1", value: "0.001", "data-field": "fees.maker" });
  const taker = el("input", { type: "number", name: "taker", step: "any", min: "0", max: "0.1", value: "0.001", "data-field": "fees.taker" });
  const slippage = el("input", { type: "number", name: "slippage_bps", step: "any", min: "0", max: "1000", value: "0", "data-field": "slippage_bps" });
  const fill = el("select", { name: "fill", "data-field": "fill" });
  fill.append(el("option", { value: "next_open" }, "next bar's open"), el("option", { value: "close" }, "this bar's close"));
  const size = el("input", { type: "number", name: "size", step: "any", value: "1", "data-field": "size" });
  const short = el("input", { type: "checkbox", name: "allow_short", "data-field": "allow_short" });
  const submit = el("button", { type: "submit", id: "submit" }, "Submit backtest");
  if (viewer) submit.disabled = true;
  const costs = el("fieldset", {});
  costs.append(
    el("legend", {}, "Range, costs and sizing"),
    label("Interval", interval),
    label("Start", start),
    label("End", end, "exclusive"),
    label("Cash", cash, "quote currency"),
    label("Maker fee", maker, "fraction (0.001 = 0.1%)"),
    label("Taker fee", taker, "fraction"),
    label("Slippage", slippage, "bps per fill"),
    label("Fill", fill),
    label("Size", size, "fraction of equity per position, (0, 1]"),
    label("Allow short", short),
  );
  form.append(label("Strategy", picker), about, params, symbolBox, costs, submit, el("p", { class: "error form-error", role: "alert" }));
  main.append(form);

  const body = (): Record<string, unknown> => {
    const [kind, name] = picker.value.split(":");
    const values: Record<string, unknown> = {};
    for (const p of specs.get(picker.value)?.params ?? []) {
      const input = params.querySelector<HTMLInputElement>(`[name="param-${p.name}"]`)!;
      try {
        values[p.name] = paramValue(p, input.value, input.checked);
      } catch (error) {
        throw new ApiError(422, (error as Error).message, `params.${p.name}`);
      }
    }
    const chosen = [...symbolBox.querySelectorAll<HTMLInputElement>("input:checked")].map((i) => i.value);
    if (!chosen.length) throw new ApiError(422, "pick at least one symbol", "symbols");
    return {
      strategy: kind === "user" ? { user: name } : name,
      params: values,
      symbols: chosen,
      interval: interval.value,
      start: dateToUtc(start.value),
      end: dateToUtc(end.value),
      cash: Number(cash.value),
      fees: { maker: Number(maker.value), taker: Number(taker.value) },
      slippage_bps: Number(slippage.value),
      fill: fill.value,
      size: Number(size.value),
      allow_short: short.checked,
    };
  };
  form.onsubmit = async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const submitted = await api<{ task_id: string }>("/backtest/submit", { method: "POST", body: JSON.stringify(body()) });
      location.hash = `#/run/${submitted.task_id}`;
    } catch (error) {
      showFieldError(form, error);
      submit.disabled = viewer;
    }
  };
}
