"""Render a backtest's result as one JSON object or a readable table (for `run` and the platform)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from backtest_core.model.config import BacktestConfig, BuiltinStrategy, ModuleStrategy, StrategySpec
from backtest_core.model.results import BacktestResult, PeriodReturn, SymbolMetrics

from backtest_cli.local_data import LoadedSymbol

# (metric field, label, format) in the order of the summary table.
SUMMARY_ROWS: tuple[tuple[str, str, str], ...] = (
    ("start_equity", "Start equity", "{:,.2f}"),
    ("final_equity", "Final equity", "{:,.2f}"),
    ("total_return_pct", "Total return %", "{:.2f}"),
    ("cagr_pct", "CAGR %", "{:.2f}"),
    ("max_drawdown_pct", "Max drawdown %", "{:.2f}"),
    ("max_drawdown_duration_bars", "Max drawdown duration (bars)", "{:d}"),
    ("sharpe", "Sharpe (annualised)", "{:.3f}"),
    ("sortino", "Sortino (annualised)", "{:.3f}"),
    ("calmar", "Calmar", "{:.3f}"),
    ("probabilistic_sharpe", "Probabilistic Sharpe", "{:.4f}"),
    ("buy_and_hold_return_pct", "Buy & hold return %", "{:.2f}"),
    ("alpha_pct", "Alpha vs buy & hold % (ann.)", "{:.2f}"),
    ("beta", "Beta vs buy & hold", "{:.3f}"),
    ("trade_count", "Trades", "{:d}"),
    ("open_trades", "Still open (not counted)", "{:d}"),
    ("win_rate_pct", "Win rate %", "{:.2f}"),
    ("profit_factor", "Profit factor", "{:.3f}"),
    ("expectancy", "Expectancy (per trade)", "{:,.2f}"),
    ("avg_win", "Average win", "{:,.2f}"),
    ("avg_loss", "Average loss", "{:,.2f}"),
    ("sqn", "SQN", "{:.3f}"),
    ("kelly_criterion", "Kelly criterion", "{:.4f}"),
    ("exposure_pct", "Exposure %", "{:.2f}"),
    ("fees_paid", "Fees paid", "{:,.2f}"),
    ("bars", "Bars", "{:d}"),
    ("periods_per_year", "Periods per year", "{:g}"),
)


def data_summary(loaded: dict[str, LoadedSymbol]) -> dict[str, dict[str, Any]]:
    """Describe each symbol's input: bars, first and last open time (UTC ISO-8601), files."""
    return {
        name: {
            "bars": len(item.candles),
            "first_open_time": _iso(int(item.candles.open_time[0])),
            "last_open_time": _iso(int(item.candles.open_time[-1])),
            "files": [str(path) for path in item.files],
        }
        for name, item in sorted(loaded.items())
    }


def result_json(result: BacktestResult, loaded: dict[str, LoadedSymbol]) -> dict[str, Any]:
    """Return the metrics at the top level, plus settings, per-symbol metrics, the returns by month and
    year, and the input data."""
    return {
        **result.metrics.model_dump(mode="json"),
        "rejected_proposals": result.rejected_proposals,
        "engine_version": result.engine_version,
        "settings": result.config.model_dump(mode="json", by_alias=True),
        "per_symbol": [item.model_dump(mode="json") for item in result.per_symbol],
        "monthly_returns": [item.model_dump(mode="json") for item in result.monthly_returns],
        "yearly_returns": [item.model_dump(mode="json") for item in result.yearly_returns],
        "data": data_summary(loaded),
    }


def summary_text(
    result: BacktestResult, loaded: dict[str, LoadedSymbol], strategy_name: str | None = None
) -> str:
    """Return a table of the settings, the input, the metrics and the per-symbol breakdown.

    `strategy_name` names the strategy in the Strategy row (default: `strategy_label`).
    """
    config = result.config
    data_rows = []
    for name, info in data_summary(loaded).items():
        span = f"{info['first_open_time']} .. {info['last_open_time']}"
        data_rows.append((f"Data {name} {config.interval}", f"{info['bars']} bars {span}"))
    return report_text(
        [*settings_rows(config, strategy_name), *data_rows],
        result.metrics.model_dump(),
        result.rejected_proposals,
        result.per_symbol,
        result.yearly_returns,
    )


def settings_rows(config: BacktestConfig, strategy_name: str | None = None) -> list[tuple[str, str]]:
    """Return the (label, value) rows of the strategy and the execution settings."""
    params = " ".join(f"{k}={v}" for k, v in config.params.items()) or "-"
    return [
        ("Strategy", f"{strategy_name or strategy_label(config.strategy)} {params}"),
        ("Fill / size / short", f"{config.fill} / {config.size:g} / {'yes' if config.allow_short else 'no'}"),
        ("Fees maker/taker", f"{config.fees.maker:g} / {config.fees.taker:g}"),
        ("Slippage (bps)", f"{config.slippage_bps:g}"),
    ]


def strategy_label(strategy: StrategySpec) -> str:
    """Name a strategy in one word: built-in name, module:Class, name@version, or the source's class."""
    if isinstance(strategy, str):
        return strategy
    if isinstance(strategy, BuiltinStrategy):
        return str(strategy.builtin)
    if isinstance(strategy, ModuleStrategy):
        return f"{strategy.module}:{strategy.class_name}"
    if strategy.name is not None:
        return f"{strategy.name}@{strategy.version}" if strategy.version is not None else strategy.name
    return f"source:{strategy.class_name}" if strategy.class_name else "source"


def report_text(
    rows: list[tuple[str, str]],
    metrics: dict[str, Any],
    rejected_proposals: int,
    per_symbol: list[SymbolMetrics],
    yearly_returns: Sequence[PeriodReturn] = (),
) -> str:
    """Return the `rows`, the metrics table, each calendar year's return and, for several symbols, the
    per-symbol breakdown."""
    rows = list(rows)
    for field, label, fmt in SUMMARY_ROWS:
        value = metrics.get(field)
        rows.append((label, "n/a" if value is None else fmt.format(value)))
    for year in yearly_returns:
        rows.append(
            (f"Return {year.period} %", "n/a" if year.return_pct is None else f"{year.return_pct:.2f}")
        )
    if rejected_proposals:
        rows.append(("Rejected proposals", str(rejected_proposals)))
    width = max(len(label) for label, _ in rows)
    lines = [f"{label:<{width}}  {value}" for label, value in rows]
    if len(per_symbol) > 1:
        lines += ["", f"{'Symbol':<12}{'Trades':>8}{'Win %':>9}{'Net PnL':>18}{'Fees':>14}{'Exposure %':>12}"]
        for item in per_symbol:
            win = "n/a" if item.win_rate_pct is None else f"{item.win_rate_pct:.2f}"
            lines.append(
                f"{item.symbol:<12}{item.trade_count:>8}{win:>9}{item.net_pnl:>18,.2f}"
                f"{item.fees_paid:>14,.2f}{item.exposure_pct:>12.2f}"
            )
    return "\n".join(lines)


def _iso(open_time_ns: int) -> str:
    return str(np.datetime64(open_time_ns, "ns").astype("datetime64[s]")) + "Z"
