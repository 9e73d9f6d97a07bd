/** Pure helpers of the pages (unit-tested with vitest). */

export interface EquityPoint {
  time: string;
  equity: number;
}

/** Each point's fall below the running peak, in percent (0 at a new peak, negative below). */
export function drawdownPct(equity: readonly number[]): number[] {
  let peak = -Infinity;
  return equity.map((value) => {
    peak = Math.max(peak, value);
    return peak > 0 ? (value / peak - 1) * 100 : 0;
  });
}

/** Seconds since the epoch of an ISO-8601 time (lightweight-charts' UTCTimestamp). */
export function epochSeconds(iso: string): number {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`not an ISO-8601 time: ${iso}`);
  return Math.floor(ms / 1000);
}

// One formatter each, made once: toLocaleString builds a new one per call (most of a 500-row table's time).
const INTEGER = new Intl.NumberFormat("en-US");
const SMALL = new Intl.NumberFormat("en-US", { maximumFractionDigits: 4 });
const LARGE = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });

/** A metric value for a table: null as an em dash, integers with separators, floats with 2-4 digits. */
export function formatValue(value: unknown): string {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return INTEGER.format(value);
    return (Math.abs(value) < 10 ? SMALL : LARGE).format(value);
  }
  return String(value);
}

/** The trades as CSV (header from the first trade's keys; values quoted when needed). */
export function tradesCsv(trades: readonly Record<string, unknown>[]): string {
  const first = trades[0];
  if (!first) return "";
  const keys = Object.keys(first);
  const cell = (v: unknown): string => {
    const text = v === null || v === undefined ? "" : String(v);
    return /[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  return [keys.join(","), ...trades.map((t) => keys.map((k) => cell(t[k])).join(","))].join("\n") + "\n";
}
