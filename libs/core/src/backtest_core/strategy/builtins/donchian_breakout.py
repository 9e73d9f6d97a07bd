"""Donchian channel breakout (turtle style)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from backtest_core.model.candles import Candles
from backtest_core.strategy import NO_SIGNAL, BaseStrategy, Param, Side, Signal, SignalArrays, Window
from backtest_core.strategy.indicators import rolling_max, rolling_min, shift

_BUY = Signal(Side.BUY)
_SELL = Signal(Side.SELL)


class DonchianBreakoutStrategy(BaseStrategy):
    """BUY when the close breaks above the previous `entry_window` bars' highest high; SELL when it
    breaks below the previous `exit_window` bars' lowest low (the current bar is not in the channel).

    Market orders, no brackets. Defaults: entry_window=20, exit_window=10 bars.
    """

    name = "donchian_breakout"
    params: ClassVar[Mapping[str, Param]] = {
        "entry_window": Param(20, "channel length for entries, bars", minimum=1),
        "exit_window": Param(10, "channel length for exits, bars", minimum=1),
    }

    def get_required_lookback(self) -> int:
        """Return max(entry_window, exit_window) + 1 bars."""
        return max(int(self.values["entry_window"]), int(self.values["exit_window"])) + 1

    def decide(self, df: Window, interval: str, **p: Any) -> Signal:
        """Return a breakout signal for the last bar."""
        c = df.close[-1]
        if c > df.high[-1 - p["entry_window"] : -1].max():
            return _BUY
        if c < df.low[-1 - p["exit_window"] : -1].min():
            return _SELL
        return NO_SIGNAL

    def decide_vectorized(self, candles: Candles, interval: str, **p: Any) -> SignalArrays:
        """Return the breakouts of the whole series."""
        upper = shift(rolling_max(candles.high, p["entry_window"]))
        lower = shift(rolling_min(candles.low, p["exit_window"]))
        side = np.zeros(len(candles), np.int8)
        side[candles.close < lower] = -1
        side[candles.close > upper] = 1
        return SignalArrays.market(side)
