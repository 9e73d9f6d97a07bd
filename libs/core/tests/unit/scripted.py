"""Helpers for hand-derived cases: typed-in daily bars and a strategy that emits scripted signals."""

from __future__ import annotations

from typing import Any

import numpy as np
from backtest_core.model.candles import Candles
from backtest_core.model.config import BacktestConfig, SourceStrategy

DAY = 86_400_000_000_000
T0 = 1_577_836_800_000_000_000  # 2020-01-01

SOURCE = """
from backtest_core.strategy import BaseStrategy, NO_SIGNAL, Side, Signal

PLAN = {plan!r}

class Scripted(BaseStrategy):
    def decide(self, df, interval, **params):
        t = (int(df.open_time[-1]) - {t0}) // {day}
        row = PLAN.get(t)
        if row is None:
            return NO_SIGNAL
        side, entry, tp, sl = row
        return Signal(Side(side), entry, tp, sl)
"""


def bars(symbol: str, rows: list[tuple[float, float, float, float]], start_day: int = 0) -> Candles:
    """Return daily candles from (open, high, low, close) rows."""
    a = np.array(rows, dtype=np.float64)
    times = T0 + DAY * (start_day + np.arange(len(rows), dtype=np.int64))
    return Candles(symbol, "1d", times, a[:, 0], a[:, 1], a[:, 2], a[:, 3], np.ones(len(rows)))


def scripted(plan: dict[int, tuple[str, float | None, float | None, float | None]]) -> SourceStrategy:
    """Return a source strategy emitting plan[t] = (side, entry, take_profit, stop_loss) at bar t."""
    return SourceStrategy(source=SOURCE.format(plan=plan, t0=T0, day=DAY))


def config(strategy: Any, symbols: list[str], **kw: Any) -> BacktestConfig:
    """Return a 1d config with cash 1000, no fees unless given."""
    base: dict[str, Any] = {"cash": 1000.0, "fees": {"maker": 0.0, "taker": 0.0}}
    base.update(kw)
    return BacktestConfig(strategy=strategy, symbols=symbols, interval="1d", **base)


MINUTE = 60_000_000_000


def minute_walk(symbol: str, seed: int, n: int, offset: int = 0) -> Candles:
    """Return a seeded random walk of n one-minute bars starting `offset` minutes after the epoch."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]] * (1 + rng.normal(0, 0.001, n))
    high = np.maximum(open_, close) * 1.004
    low = np.minimum(open_, close) * 0.996
    times = (offset + np.arange(n, dtype=np.int64)) * MINUTE
    return Candles(symbol, "1m", times, open_, high, low, close, np.ones(n))
