"""run_backtest: the composition root of the engine (load, propose in parallel, replay, measure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from pydantic import TypeAdapter

from backtest_core import __version__
from backtest_core.engine.equity import EquityCurve, build_equity
from backtest_core.engine.market import Market, market_key, prepare_market
from backtest_core.engine.orchestrator import (
    SignalPath,
    SignalSource,
    Timeline,
    in_process_signals,
    merge_timeline,
)
from backtest_core.engine.portfolio import ReplayResults, replay_timeline
from backtest_core.engine.proposals import EXIT_AT_CLOSE, EXIT_REASONS, ProposalSettings, build_proposals
from backtest_core.engine.run_progress import ProgressCallback, RunProgress
from backtest_core.gc_pause import gc_paused
from backtest_core.metrics.extra import (
    alpha_beta,
    buy_and_hold_return_pct,
    kelly_fraction,
    probabilistic_sharpe,
    system_quality_number,
)
from backtest_core.metrics.performance import (
    bar_returns,
    cagr_pct,
    calmar_ratio,
    max_drawdown,
    periods_per_year,
    profit_factor,
    sharpe_ratio,
    sortino_ratio,
    trade_statistics,
    win_rate_pct,
)
from backtest_core.model.candles import Candles, interval_ns
from backtest_core.model.config import BacktestConfig
from backtest_core.model.period_returns import period_returns
from backtest_core.model.results import BacktestResult, EquityPoint, Metrics, SymbolMetrics
from backtest_core.model.trade_log import TradeLog
from backtest_core.model.trade_rows import TradeTable, utc_datetimes

_END_OF_DATA = EXIT_REASONS.index("end_of_data")  # a position still open after the last bar


def run_backtest(
    config: BacktestConfig,
    candles: Mapping[str, Candles],
    *,
    on_progress: ProgressCallback | None = None,
    equity_points_max: int | None = None,
    signal_path: SignalPath = "auto",
    signal_source: SignalSource = in_process_signals,
    on_equity: Callable[[np.ndarray, np.ndarray], None] | None = None,
    market: Market | None = None,
) -> BacktestResult:
    """Run one backtest over `candles` (by symbol) and return its result.

    `signal_path`: "auto" uses the strategy's vectorized path when it has one, "per_bar" forces the
    decide() loop (same result, slower), "vectorized" requires the vectorized path.
    `equity_points_max`: downsample the returned equity curve to at most this many points (first and
    last kept); metrics always use every bar. `signal_source` computes the strategy's signals (this
    process by default; the sandbox entry runs the strategy in its own process). `on_progress(fraction,
    stage)` follows backtest_core.engine.run_progress. `on_equity(times_ns, equity)` receives the whole
    per-bar curve as arrays (before any downsampling: a sweep's returns without a model per bar). The
    engine never reads the wall clock. `market`: the config's market prepared from `candles` (a sweep's
    trials share one, engine.market); prepared here when None.
    """
    progress = RunProgress(on_progress)
    progress.loading()
    if market is None:
        market = prepare_market(config, candles)
    elif not market.serves(config):
        raise ValueError(f"the market given is of {market.key}, the config reads {market_key(config)}")
    data, union, closes = market.data, market.union, market.closes
    progress.signals({symbol: len(c) for symbol, c in data.items()})
    signals = signal_source(config, data, signal_path, progress.symbol)
    settings = ProposalSettings(
        fill=config.fill,
        allow_short=config.allow_short,
        same_bar=config.same_bar,
        max_holding_bars=config.max_holding_bars,
        tick_size=config.tick_size,
    )
    tables = {symbol: build_proposals(data[symbol], signals[symbol], settings) for symbol in config.symbols}
    symbols = config.symbols
    timeline = merge_timeline(tables, data, symbols, union)
    progress.portfolio()
    with gc_paused():  # from here on only acyclic objects are made (floats, dicts, trades)
        results = replay_timeline(
            timeline,
            config.cash,
            len(symbols),
            config.fees,
            size=config.size,
            slippage_bps=config.slippage_bps,
            tick_size=config.tick_size,
            step_size=config.step_size,
            closes=closes,
        )
        progress.metrics()
        curve = build_equity(union, closes, timeline, results, config.cash)
        if on_equity is not None:
            on_equity(union, curve.equity)
        pnl = results.trades.pnl()
        still_open = timeline.reason[results.trades.exit_event] == _END_OF_DATA
        exposed = _exposed_bars(curve, timeline.union_bar[results.trades.exit_event[still_open]])
        trades = _trades(config, results, pnl, timeline, union)
        result = BacktestResult(
            config=config,
            engine_version=__version__,
            metrics=_metrics(
                config,
                curve,
                exposed,
                results,
                pnl,
                still_open,
                [data[s].close for s in symbols],
                market.benchmark_returns,
            ),
            per_symbol=_per_symbol(config, results, pnl, still_open, curve, data),
            equity_curve=_points(union, curve.equity, equity_points_max),
            trades=trades,
            rejected_proposals=results.rejected,
            monthly_returns=period_returns(union, curve.equity, config.cash, "month"),
            yearly_returns=period_returns(union, curve.equity, config.cash, "year"),
        )
    progress.done()
    return result


def _trades(
    config: BacktestConfig,
    results: ReplayResults,
    pnl: np.ndarray,
    timeline: Timeline,
    union: np.ndarray,
) -> TradeLog:
    """Return the closed trades as a columnar log (models are made only when someone reads them)."""
    tr = results.trades
    step = interval_ns(config.interval)
    entry, exit_ = tr.entry_event, tr.exit_event
    at = timeline.union_bar
    entry_ns = union[at[entry]] + np.where(timeline.moment[entry] >= EXIT_AT_CLOSE, step, 0)
    exit_ns = union[at[exit_]] + np.where(timeline.moment[exit_] >= EXIT_AT_CLOSE, step, 0)
    table = TradeTable(
        symbols=tuple(config.symbols),
        reasons=EXIT_REASONS,
        symbol=tr.symbol,
        long=tr.direction > 0,
        reason=timeline.reason[exit_],
        entry_ns=entry_ns,
        exit_ns=exit_ns,
        units=tr.units,
        entry_price=tr.entry_fill,
        exit_price=tr.exit_fill,
        pnl=pnl,
        return_pct=100.0 * pnl / (tr.units * tr.entry_fill),
        fees=tr.entry_fee + tr.exit_fee,
        bars_held=timeline.bar[exit_] - timeline.bar[entry],
    )
    return TradeLog(table)


def curve_points(bars: int, limit: int | None) -> np.ndarray:
    """The bars an equity curve of `bars` keeps when downsampled to at most `limit` points: evenly
    spaced, the first and the last included (every bar when it has no more than `limit`)."""
    if limit is None or bars <= limit:
        return np.arange(bars)
    kept: np.ndarray = np.unique(np.round(np.linspace(0, bars - 1, max(2, limit))).astype(np.int64))
    return kept


def _points(union: np.ndarray, equity: np.ndarray, limit: int | None) -> list[EquityPoint]:
    idx = curve_points(len(union), limit)
    times = utc_datetimes(union[idx])
    values = equity[idx].tolist()
    return _POINTS.validate_python([{"time": t, "equity": v} for t, v in zip(times, values, strict=True)])


_POINTS = TypeAdapter(list[EquityPoint])


def _exposed_bars(curve: EquityCurve, marked_bars: np.ndarray) -> np.ndarray:
    """Return which union bars' closes find a position open.

    The equity's position segments end before their exit bar (a trade closed at a bar's open or close is
    not held at that close); a position still open after the last bar is marked at its last bar's close,
    which finds it open, so that bar counts too (vectorbt's position mask).
    """
    held = curve.held_any.copy()
    held[marked_bars] = True
    return held


def _metrics(
    config: BacktestConfig,
    curve: EquityCurve,
    exposed: np.ndarray,
    results: ReplayResults,
    pnl: np.ndarray,
    still_open: np.ndarray,
    closes: list[np.ndarray],
    benchmark_returns: np.ndarray,
) -> Metrics:
    """Return the metrics: returns of the whole equity curve, trade statistics of the closed trades.

    `closes[k]`: symbol k's closes; `benchmark_returns`: per-bar returns of holding them (union bars).
    """
    eq = curve.equity
    stats = trade_statistics(pnl, still_open)
    closed = pnl[~still_open]
    ppy = periods_per_year(config.interval)
    r = bar_returns(eq)
    dd, dd_bars = max_drawdown(eq)
    final = float(eq[-1])
    cagr = cagr_pct(config.cash, final, len(eq), ppy)
    alpha, beta = alpha_beta(r, benchmark_returns, ppy)
    return Metrics(
        start_equity=config.cash,
        final_equity=final,
        total_return_pct=(final / config.cash - 1.0) * 100.0,
        cagr_pct=cagr,
        sharpe=sharpe_ratio(r, ppy),
        sortino=sortino_ratio(r, ppy),
        calmar=calmar_ratio(cagr, dd),
        max_drawdown_pct=dd,
        max_drawdown_duration_bars=dd_bars,
        win_rate_pct=stats.win_rate_pct,
        profit_factor=stats.profit_factor,
        expectancy=stats.expectancy,
        avg_win=stats.avg_win,
        avg_loss=stats.avg_loss,
        trade_count=stats.trade_count,
        exposure_pct=100.0 * float(exposed.mean()) if len(eq) else 0.0,
        fees_paid=results.fees_paid,
        bars=len(eq),
        periods_per_year=ppy,
        open_trades=stats.open_trades,
        buy_and_hold_return_pct=buy_and_hold_return_pct(closes),
        sqn=system_quality_number(closed),
        kelly_criterion=kelly_fraction(closed),
        probabilistic_sharpe=probabilistic_sharpe(r),
        alpha_pct=alpha,
        beta=beta,
    )


def _per_symbol(
    config: BacktestConfig,
    results: ReplayResults,
    pnl: np.ndarray,
    still_open: np.ndarray,
    curve: EquityCurve,
    data: Mapping[str, Candles],
) -> list[SymbolMetrics]:
    """Return each symbol's closed-trade statistics; its net pnl and fees include an open position's."""
    tr = results.trades
    order = tr.by_symbol()
    cuts = np.searchsorted(tr.symbol[order], np.arange(len(config.symbols) + 1)).tolist()
    pnls_all = pnl[order]
    open_all = still_open[order]
    marked = np.bincount(tr.symbol[still_open], minlength=len(config.symbols))  # +1 bar each: _exposed_bars
    fees_all = (tr.entry_fee + tr.exit_fee)[order]
    out: list[SymbolMetrics] = []
    for code, symbol in enumerate(config.symbols):
        lo, hi = cuts[code], cuts[code + 1]
        pnls = pnls_all[lo:hi]
        closed = pnls[~open_all[lo:hi]]
        out.append(
            SymbolMetrics(
                symbol=symbol,
                trade_count=len(closed),
                win_rate_pct=win_rate_pct(closed),
                net_pnl=float(pnls.sum()),
                profit_factor=profit_factor(closed),
                fees_paid=float(fees_all[lo:hi].sum()),
                exposure_pct=100.0 * (curve.held_bars.get(code, 0) + int(marked[code])) / len(data[symbol]),
            )
        )
    return out
