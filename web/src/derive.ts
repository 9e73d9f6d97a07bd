/** Pure helpers of the compare, sweep and strategy pages (unit-tested with vitest). */

/** Each run's value of every metric and its difference from the first run (null where not a number). */
export function metricRows(
  runs: readonly Record<string, unknown>[],
): { name: string; values: unknown[]; diffs: (number | null)[] }[] {
  const names = [...new Set(runs.flatMap((m) => Object.keys(m)))];
  return names.map((name) => {
    const values = runs.map((m) => m[name] ?? null);
    const base = values[0];
    const diffs = values.map((v) => (typeof v === "number" && typeof base === "number" ? v - base : null));
    return { name, values, diffs };
  });
}

/** An equity curve as percent return from its first point (so runs of different cash overlay). */
export function returnPct(equity: readonly number[]): number[] {
  const first = equity[0];
  if (first === undefined || first === 0) return equity.map(() => 0);
  return equity.map((v) => (v / first - 1) * 100);
}

/** The line number of a "... at line N ..." message (the strategy check's syntax error), else null. */
export function errorLine(message: string): number | null {
  const match = /\bline (\d+)\b/.exec(message);
  return match ? Number(match[1]) : null;
}

/** A heatmap cell's colour: red (lowest) through white to blue (highest); grey for no value. */
export function heatColor(value: number | null, lo: number, hi: number): string {
  if (value === null || !Number.isFinite(value)) return "#d8dde6";
  const t = hi > lo ? (value - lo) / (hi - lo) : 0.5;
  const mix = (a: number, b: number, s: number): number => Math.round(a + (b - a) * s);
  // #b3261e (low) -> #ffffff (middle) -> #1f6feb (high)
  if (t < 0.5) {
    const s = t / 0.5;
    return `rgb(${mix(179, 255, s)},${mix(38, 255, s)},${mix(30, 255, s)})`;
  }
  const s = (t - 0.5) / 0.5;
  return `rgb(${mix(255, 31, s)},${mix(255, 111, s)},${mix(255, 235, s)})`;
}

/** The smallest and largest finite value of a grid (null cells skipped); [0, 0] when there is none. */
export function gridRange(z: readonly (readonly (number | null)[])[]): [number, number] {
  const values = z.flat().filter((v): v is number => v !== null && Number.isFinite(v));
  return values.length ? [Math.min(...values), Math.max(...values)] : [0, 0];
}

/** What each headline metric means and its convention, in one short line (docs/metrics.md has more). */
export const METRIC_NOTES: Record<string, string> = {
  start_equity: "cash before the first bar, quote currency",
  final_equity: "equity at the last bar's close, an open position marked at that close",
  periods_per_year: "365 days over the bar interval (1d: 365, 1h: 8,760): crypto trades every day",
  bars: "bars of the run; the per-bar returns are bars - 1 close-to-close changes",
  fees_paid: "every fee paid, an open position's entry fee included, quote currency",
  trade_count: "closed trades (a position still open at the end is in open trades)",
  open_trades: "positions still open after the last bar, marked at its close, neither won nor lost",
  avg_win: "mean net pnl of the closed trades with pnl > 0, quote currency",
  avg_loss: "mean net pnl of the closed trades with pnl < 0, quote currency",
  alpha_pct: "annualised excess return over buy and hold of the same symbols, (1 + mean(r - beta·b))^periods_per_year - 1, percent",
  beta: "cov(r, b) / var(b) of the per-bar returns r of the equity and b of buy and hold",
  total_return_pct: "final over start equity - 1, percent",
  cagr_pct: "compound annual growth over the bars, periods_per_year bars a year",
  sharpe: "mean over standard deviation of per-bar returns, annualised by √periods_per_year, risk-free 0",
  sortino: "as Sharpe, with the downside deviation (returns below 0) in the denominator",
  calmar: "CAGR over max drawdown",
  max_drawdown_pct: "largest fall from a running equity peak, percent",
  max_drawdown_duration_bars: "longest run of bars below a previous peak",
  win_rate_pct: "closed trades with pnl > 0 over all closed trades, percent",
  profit_factor: "gross profit over gross loss of closed trades",
  expectancy: "mean pnl of a closed trade, quote currency",
  exposure_pct: "bars with an open position over all bars, percent",
  buy_and_hold_return_pct: "buy each symbol at its first close, sell at its last, equal weights, percent",
  sqn: "system quality number: √trades × mean / std of trade pnl",
  kelly_criterion: "win rate - (1 - win rate) / (avg win / |avg loss|)",
  probabilistic_sharpe: "probability that the true Sharpe exceeds 0, given skew, kurtosis and length",
};

/** The overfitting statistics of a sweep, each explained in one sentence. */
export const OVERFITTING_NOTES: Record<string, string> = {
  pbo: "Probability of backtest overfitting (CSCV): how often the in-sample best trial ranks below the median out of sample; near 0 is good, above 0.5 means the choice is worse than random.",
  deflated_sharpe: "Deflated Sharpe ratio: the probability that the best trial's Sharpe beats the best of this many trials by pure luck; above 0.95 is significant.",
  expected_max_sharpe: "The Sharpe ratio the best of this many trials would reach by luck alone, with no skill.",
  psr: "Probabilistic Sharpe ratio: the probability that the best trial's true Sharpe is above 0, given its length, skew and kurtosis.",
  trials: "The number of successful trials the PBO and the deflated Sharpe ratio count (N).",
  pbo_splits: "How many blocks of consecutive bars the PBO's cross-validation cut the trials' returns into (half in-sample in each of its combinations).",
  deflated_sharpe_history: "The deflated Sharpe ratio again, with N every backtest you ran of this strategy on these symbols and interval, not only this sweep's trials.",
  history_trials: "That N: this sweep's trials plus your other backtests of the strategy on the same symbols and interval.",
};

/** Each calendar month's return in percent (UTC): its last equity over the previous month's last
 * (the first month over the curve's first point) - 1. */
export function monthlyReturns(curve: readonly { time: string; equity: number }[]): { year: number; month: number; pct: number }[] {
  const out: { year: number; month: number; pct: number }[] = [];
  let base = curve[0]?.equity ?? 0;
  for (let i = 0; i < curve.length; i++) {
    const point = curve[i]!;
    const date = new Date(point.time);
    const next = curve[i + 1];
    const nextDate = next ? new Date(next.time) : null;
    const monthEnds = !nextDate || nextDate.getUTCMonth() !== date.getUTCMonth() || nextDate.getUTCFullYear() !== date.getUTCFullYear();
    if (monthEnds) {
      out.push({ year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, pct: base ? (point.equity / base - 1) * 100 : 0 });
      base = point.equity;
    }
  }
  return out;
}

/** Chart markers of trades: an arrow at each entry (up for long, down for short), a circle at each
 * exit (green on a gain, red on a loss), sorted by time as the chart needs. */
export function tradeMarkers(trades: readonly Record<string, unknown>[], symbol: string): { time: number; position: "belowBar" | "aboveBar"; shape: "arrowUp" | "arrowDown" | "circle"; color: string; text: string }[] {
  const marks = [];
  for (const t of trades) {
    if (t.symbol !== symbol) continue;
    const long = t.side !== "short";
    marks.push({ time: Math.floor(Date.parse(String(t.entry_time)) / 1000), position: long ? ("belowBar" as const) : ("aboveBar" as const), shape: long ? ("arrowUp" as const) : ("arrowDown" as const), color: "#1f6feb", text: long ? "L" : "S" });
    if (t.exit_time) {
      const gain = Number(t.pnl) >= 0;
      marks.push({ time: Math.floor(Date.parse(String(t.exit_time)) / 1000), position: long ? ("aboveBar" as const) : ("belowBar" as const), shape: "circle" as const, color: gain ? "#1a7f37" : "#b3261e", text: String(t.exit_reason ?? "") });
    }
  }
  return marks.sort((a, b) => a.time - b.time);
}
