/** The New-run form's pure helpers: inputs from declared params, values back to a submit body. */

export interface ParamInfo {
  name: string;
  default: unknown;
  type: string;
  minimum?: number | null;
  maximum?: number | null;
  doc?: string;
}

/** The declared params of an uploaded strategy known only by its defaults: types from the values. */
export function paramsFromDefaults(defaults: Record<string, unknown>): ParamInfo[] {
  return Object.entries(defaults).map(([name, value]) => ({
    name,
    default: value,
    type: typeof value === "boolean" ? "bool" : typeof value === "number" ? (Number.isInteger(value) ? "int" : "float") : "str",
    minimum: null,
    maximum: null,
    doc: "",
  }));
}

/** The <input> attributes for a declared param (type, step, bounds, default). */
export function inputAttrs(p: ParamInfo): Record<string, string> {
  if (p.type === "bool") return { type: "checkbox", ...(p.default ? { checked: "" } : {}) };
  if (p.type === "int" || p.type === "float") {
    const attrs: Record<string, string> = { type: "number", step: p.type === "int" ? "1" : "any", value: String(p.default ?? "") };
    if (p.minimum !== null && p.minimum !== undefined) attrs.min = String(p.minimum);
    if (p.maximum !== null && p.maximum !== undefined) attrs.max = String(p.maximum);
    return attrs;
  }
  return { type: "text", value: String(p.default ?? "") };
}

/** A param's typed value from its input's text (int, float, bool, str); throws naming the param. */
export function paramValue(p: ParamInfo, text: string, checked = false): number | boolean | string {
  if (p.type === "bool") return checked;
  if (p.type === "int" || p.type === "float") {
    const value = Number(text);
    if (text.trim() === "" || !Number.isFinite(value)) throw new Error(`${p.name} must be a number, was ${JSON.stringify(text)}`);
    if (p.type === "int" && !Number.isInteger(value)) throw new Error(`${p.name} must be an integer, was ${text}`);
    return value;
  }
  return text;
}

/** "2018-01-01" (a date input) as the API's UTC time, "" as null. */
export function dateToUtc(date: string): string | null {
  return date ? `${date}T00:00:00Z` : null;
}

/** Bounds of a param for its hint: "1 … 99", "≥ 2", "" when unbounded. */
export function boundsText(p: ParamInfo): string {
  const lo = p.minimum ?? null;
  const hi = p.maximum ?? null;
  if (lo !== null && hi !== null) return `${lo} … ${hi}`;
  if (lo !== null) return `≥ ${lo}`;
  if (hi !== null) return `≤ ${hi}`;
  return "";
}
