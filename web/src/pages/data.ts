import { api } from "../api";
import { el, shell, showError, table } from "../dom";

interface Coverage {
  first: string;
  last: string;
  count: number;
  gaps: number;
  missing: number;
}

/** The stored market data: symbols, their intervals, coverage and gaps. */
export async function dataPage(): Promise<void> {
  const main = shell("Data");
  try {
    const list = await api<{ items: { symbol: string; type: string; coverage: Record<string, Coverage> }[] }>("/symbol/list?limit=1000");
    const rows = list.items.flatMap((s) =>
      Object.entries(s.coverage).map(([interval, c]) => [s.symbol, s.type, interval, c.first, c.last, c.count.toLocaleString("en-US"), String(c.gaps), String(c.missing)]),
    );
    main.append(table(["Symbol", "Type", "Interval", "First", "Last", "Bars", "Gaps", "Missing bars"], rows, { id: "coverage" }));
  } catch (error) {
    showError(main, error);
  }
}
