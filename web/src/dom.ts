/** Small DOM helpers shared by the pages: elements, tables, the page shell, errors at their fields. */
import { ApiError, session, signOut } from "./api";

export const app = document.querySelector<HTMLDivElement>("#app")!;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  text = "",
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

export function table(headers: string[], rows: (string | Node)[][], attrs: Record<string, string> = {}): HTMLTableElement {
  const t = el("table", attrs);
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

export function label(text: string, input: HTMLElement, hint = ""): HTMLLabelElement {
  const l = el("label", {}, text);
  l.append(input);
  if (hint) l.append(el("small", {}, hint));
  return l;
}

const NAV: [string, string][] = [
  ["#/runs", "Runs"],
  ["#/new", "New run"],
  ["#/compare", "Compare"],
  ["#/strategies", "Strategies"],
  ["#/sweeps", "Sweeps"],
  ["#/walkforwards", "Walk-forward"],
  ["#/data", "Data"],
  ["/graphql", "GraphQL"], // GraphiQL, a page of its own (graphiql.html) served at the endpoint's URL
];

/** Clear the page and return its <main> under the navigation header. */
export function shell(title: string): HTMLElement {
  const current = session();
  app.replaceChildren();
  const header = el("header");
  for (const [href, text] of NAV) header.append(el("a", { href }, text));
  header.append(el("span", { class: "who" }, current ? `${current.user} (${current.role})` : ""));
  const out = el("button", { type: "button", id: "sign-out" }, "Sign out");
  out.onclick = () => signOut();
  header.append(out);
  const main = el("main");
  main.append(el("h1", {}, title));
  app.append(header, main);
  return main;
}

export function errorText(error: unknown): string {
  return error instanceof ApiError || error instanceof Error ? error.message : String(error);
}

export function showError(where: HTMLElement, error: unknown): void {
  where.append(el("p", { class: "error", role: "alert" }, errorText(error)));
}

/** Show an API error next to the form field it names (`data-field`), else in the form's own alert. */
export function showFieldError(form: HTMLElement, error: unknown): void {
  for (const old of form.querySelectorAll(".field-error")) old.remove();
  const alert = form.querySelector<HTMLElement>(".form-error");
  const field = error instanceof ApiError ? error.field : null;
  const target = field ? fieldElement(form, field) : null;
  if (target) {
    target.after(el("span", { class: "error field-error", role: "alert", "data-error-for": field ?? "" }, errorText(error)));
    if (alert) alert.textContent = "";
  } else if (alert) {
    alert.textContent = errorText(error);
  }
}

function fieldElement(form: HTMLElement, field: string): HTMLElement | null {
  // "params.fast" -> the param input; "fees.maker" -> its input; "params" -> the params fieldset
  const exact = form.querySelector<HTMLElement>(`[data-field="${CSS.escape(field)}"]`);
  if (exact) return exact;
  const parent = field.split(".").slice(0, -1).join(".");
  return parent ? fieldElement(form, parent) : null;
}
