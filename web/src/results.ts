/** Read a whole result through the paged results endpoint (every trade and equity point). */
import { api } from "./api";
import type { Result, Results } from "./types";

const TRADES_PAGE = 5000;
const EQUITY_PAGE = 10000;

export async function fetchResult(taskId: string): Promise<Result> {
  const first = await api<Results>(`/backtest/results/${taskId}?trades_limit=${TRADES_PAGE}&equity_limit=${EQUITY_PAGE}`);
  const result = first.result;
  let { trades_next_offset: trades, equity_next_offset: equity } = first.page;
  while (trades !== null || equity !== null) {
    const query = `trades_offset=${trades ?? 0}&trades_limit=${trades === null ? 1 : TRADES_PAGE}&equity_offset=${equity ?? 0}&equity_limit=${equity === null ? 1 : EQUITY_PAGE}`;
    const next = await api<Results>(`/backtest/results/${taskId}?${query}`);
    if (trades !== null) result.trades.push(...next.result.trades);
    if (equity !== null) result.equity_curve.push(...next.result.equity_curve);
    trades = trades === null ? null : next.page.trades_next_offset;
    equity = equity === null ? null : next.page.equity_next_offset;
  }
  return result;
}

/** The metrics a row of runs or trials shows, in this order. */
export const HEADLINE_METRICS = ["total_return_pct", "sharpe", "max_drawdown_pct", "trade_count"] as const;

/** The strategy's name of a config or task (built-in name, uploaded name, or its class). */
export function strategyName(strategy: unknown, ref?: { name: string; version: number } | null): string {
  if (ref) return `${ref.name} v${ref.version}`;
  if (typeof strategy === "string") return strategy;
  if (strategy && typeof strategy === "object") {
    const s = strategy as Record<string, unknown>;
    return String(s.builtin ?? s.name ?? s.class ?? s.module ?? "uploaded");
  }
  return "?";
}
