import { api } from "../api";
import { el, shell, showError, table } from "../dom";

interface Coverage {
  first: string;
  last: string;
  count: number;
  gaps: number;
  missing: number;
}
interface Gaps {
  symbol: string;
  interval: string;
  gaps: { start: string; end: string; missing: number }[];
}

const GAP_SERIES_MAX = 20; // series whose holes are listed (one request each)

/** The stored market data: symbols, their intervals, coverage and gaps, then where each gap is. */
export async function dataPage(): Promise<void> {
  const main = shell("Data");
  try {
    const list = await api<{ items: { symbol: string; type: string; coverage: Record<string, Coverage> }[] }>("/symbol/list?limit=1000");
    const series = list.items.flatMap((s) => Object.entries(s.coverage).map(([interval, c]) => ({ symbol: s.symbol, type: s.type, interval, c })));
    const rows = series.map(({ symbol, type, interval, c }) => [symbol, type, interval, c.first, c.last, c.count.toLocaleString("en-US"), String(c.gaps), String(c.missing)]);
    main.append(table(["Symbol", "Type", "Interval", "First", "Last", "Bars", "Gaps", "Missing bars"], rows, { id: "coverage" }));
    const holed = series.filter((s) => s.c.gaps > 0).slice(0, GAP_SERIES_MAX);
    if (!holed.length) return;
    const found = await Promise.all(holed.map((s) => api<Gaps>(`/symbol/${s.symbol}/gaps?interval=${s.interval}`)));
    const gapRows = found.flatMap((g) => g.gaps.map((h) => [g.symbol, g.interval, h.start, h.end, String(h.missing)]));
    main.append(el("h2", {}, "Gaps (first missing bar, next stored bar)"), table(["Symbol", "Interval", "From", "Until", "Missing bars"], gapRows, { id: "gaps" }));
  } catch (error) {
    showError(main, error);
  }
}
