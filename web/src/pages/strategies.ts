import { ApiError, api, session } from "../api";
import { errorLine } from "../derive";
import { el, errorText, label, shell, showError, table } from "../dom";

interface Uploaded {
  name: string;
  version: number;
  class_name: string;
  description: string;
  source: string;
  params: Record<string, unknown>;
  updated_at: string;
}
interface Versions {
  latest: number | null;
  versions: { version: number; class_name: string; created_at: string }[];
}

const TEMPLATE = `from backtest_core.strategy import BaseStrategy, Param, Side, Signal


class CloseAboveOpen(BaseStrategy):
    """BUY when the bar closes above its open, SELL when below."""

    params = {"min_move": Param(0.0, "smallest close-open move, quote currency", minimum=0.0)}

    def get_required_lookback(self):
        return 1

    def decide(self, df, interval, **p):
        move = df.close[-1] - df.open[-1]
        if move > p["min_move"]:
            return Signal(Side.BUY)
        if move < -p["min_move"]:
            return Signal(Side.SELL)
        return Signal(Side.NO)
`;

/** Your uploaded strategies; with a name: its editor (the check's error at its line) and versions. */
export async function strategiesPage(name: string): Promise<void> {
  const main = shell(name ? `Strategy ${name}` : "Strategies");
  let current: Uploaded | null = null;
  try {
    if (name) current = await api<Uploaded>(`/strategy/${name}`);
    else {
      const list = await api<{ items: Uploaded[] }>("/strategy/list?limit=200");
      main.append(
        table(
          ["Name", "Version", "Class", "Default params", "Updated", ""],
          list.items.map((s) => [
            el("a", { href: `#/strategies/${s.name}` }, s.name),
            String(s.version),
            s.class_name,
            JSON.stringify(s.params),
            s.updated_at,
            el("a", { href: `#/new/user:${s.name}` }, "run"),
          ]),
          { id: "strategy-list" },
        ),
      );
    }
  } catch (error) {
    showError(main, error);
    return;
  }
  if (current) {
    const run = el("p");
    run.append(el("a", { href: `#/new/user:${current.name}`, id: "run-strategy" }, `Run ${current.name} v${current.version}`));
    main.append(run);
  }
  main.append(el("h2", {}, current ? `Edit (new version after v${current.version})` : "Upload a strategy"));
  main.append(editor(current));
  if (current) await versions(main, current.name);
}

function editor(current: Uploaded | null): HTMLFormElement {
  const form = el("form", { id: "strategy-form", class: "form" });
  const name = el("input", { name: "name", pattern: "[a-z][a-z0-9_]{0,63}", required: "", value: current?.name ?? "" });
  if (current) name.readOnly = true;
  const params = el("input", { name: "params", value: JSON.stringify(current?.params ?? {}) });
  const source = el("textarea", { name: "source", rows: "24", cols: "90", spellcheck: "false", id: "source" });
  source.value = current?.source ?? TEMPLATE;
  const gutter = el("pre", { class: "gutter", id: "gutter", "aria-hidden": "true" });
  const numbers = (bad: number | null): void => {
    gutter.replaceChildren();
    const count = source.value.split("\n").length;
    for (let n = 1; n <= count; n++) {
      gutter.append(el("span", n === bad ? { class: "error-line", "data-line": String(n) } : {}, String(n)), "\n");
    }
  };
  source.oninput = () => numbers(null);
  source.onscroll = () => (gutter.scrollTop = source.scrollTop);
  numbers(null);
  const code = el("div", { class: "code" });
  code.append(gutter, source);
  const message = el("p", { class: "error", role: "alert", id: "strategy-error" });
  const save = el("button", { type: "submit", id: "save-strategy" }, current ? "Save new version" : "Upload");
  if (session()?.role === "viewer") save.disabled = true;
  form.append(label("Name", name), label("Default params (JSON)", params), code, save, message);
  form.onsubmit = async (event) => {
    event.preventDefault();
    message.textContent = "";
    numbers(null);
    let defaults: Record<string, unknown>;
    try {
      defaults = JSON.parse(params.value || "{}") as Record<string, unknown>;
    } catch (error) {
      message.textContent = `params must be a JSON object: ${errorText(error)}`;
      return;
    }
    try {
      const body = { source: source.value, params: defaults };
      const saved = current
        ? await api<Uploaded>(`/strategy/${current.name}`, { method: "PUT", body: JSON.stringify({ ...body, expected_version: current.version }) })
        : await api<Uploaded>("/strategy/create", { method: "POST", body: JSON.stringify({ ...body, name: name.value }) });
      location.hash = `#/strategies/${saved.name}`;
      if (current) location.reload();
    } catch (error) {
      message.textContent = errorText(error);
      const line = error instanceof ApiError ? errorLine(error.message) : null;
      if (line !== null) {
        numbers(line);
        const lines = source.value.split("\n");
        const startOf = lines.slice(0, line - 1).join("\n").length + (line > 1 ? 1 : 0);
        source.focus();
        source.setSelectionRange(startOf, startOf + (lines[line - 1]?.length ?? 0));
      }
    }
  };
  return form;
}

async function versions(main: HTMLElement, name: string): Promise<void> {
  try {
    const list = await api<Versions>(`/strategy/${name}/versions`);
    main.append(
      el("h2", {}, "Versions"),
      table(
        ["Version", "Class", "Stored", ""],
        list.versions.map((v) => [String(v.version), v.class_name, v.created_at, v.version === list.latest ? "latest" : ""]),
        { id: "versions" },
      ),
    );
  } catch (error) {
    showError(main, error);
  }
}
