"""Simple moving-average crossover."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from backtest_core.errors import ConfigError
from backtest_core.model.candles import Candles
from backtest_core.native import _kernels
from backtest_core.strategy import NO_SIGNAL, BaseStrategy, Param, Side, Signal, SignalArrays, Window
from backtest_core.strategy.indicators import last_window_sums

_BUY = Signal(Side.BUY)
_SELL = Signal(Side.SELL)


class SmaCrossStrategy(BaseStrategy):
    """BUY when the fast SMA crosses strictly above the slow SMA, SELL on the opposite strict cross.

    Up-cross at bar t: fast[t-1] < slow[t-1] and fast[t] > slow[t]; down-cross: fast[t-1] > slow[t-1]
    and fast[t] < slow[t]. SMA(n)[t] = (close[t-n+1] + ... + close[t]) / n, summed oldest first.
    Long only unless config.allow_short (then SELL also opens a short). Defaults: fast=10, slow=30 bars.
    Market orders, no take-profit or stop-loss.
    """

    name = "sma_cross"
    params: ClassVar[Mapping[str, Param]] = {
        "fast": Param(10, "fast SMA length, bars", minimum=1),
        "slow": Param(30, "slow SMA length, bars", minimum=2),
    }

    def validate_params(self, **p: Any) -> None:
        """Require fast < slow."""
        if p["fast"] >= p["slow"]:
            raise ConfigError(f"fast must be < slow, was fast={p['fast']}, slow={p['slow']}")

    def get_required_lookback(self) -> int:
        """Return slow + 1 bars (the previous bar's slow SMA is needed)."""
        return int(self.values["slow"]) + 1

    def decide(self, df: Window, interval: str, **p: Any) -> Signal:
        """Return BUY/SELL on a strict crossover of the last two bars, else NO."""
        fast, slow = p["fast"], p["slow"]
        # Window sums ending at t-1 and t (the same arithmetic as the vectorized path).
        f0, f1, s0, s1 = last_window_sums(df.close, ((fast, 1), (fast, 0), (slow, 1), (slow, 0)))
        f0, f1, s0, s1 = f0 / fast, f1 / fast, s0 / slow, s1 / slow
        if f0 < s0 and f1 > s1:
            return _BUY
        if f0 > s0 and f1 < s1:
            return _SELL
        return NO_SIGNAL

    def decide_vectorized(self, candles: Candles, interval: str, **p: Any) -> SignalArrays:
        """Return the crossover signals of the whole series (C kernel `_kernels.sma_cross_sides`)."""
        close = np.ascontiguousarray(candles.close, np.float64)
        side = np.empty(len(close), np.int8)
        _kernels.sma_cross_sides(close, int(p["fast"]), int(p["slow"]), side)
        return SignalArrays.market(side)
