"""Peak/trough EMA reversal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from backtest_core.errors import ConfigError
from backtest_core.model.candles import Candles
from backtest_core.strategy import NO_SIGNAL, BaseStrategy, Param, Side, Signal, SignalArrays, Window
from backtest_core.strategy.builtins.momentum import _brackets
from backtest_core.strategy.indicators import (
    ema_weights,
    last_window_sum,
    rolling_max,
    rolling_min,
    shift,
    window_sums,
)


class PeakEMAReversalStrategy(BaseStrategy):
    """Trade the turn after a stretched move away from the EMA.

    EMA[t]: exponential average (alpha = 2/(ema_span+1)) over the last 3*ema_span closes, weights
    normalised to sum to 1. BUY at t (trough reversal): close crosses above the EMA (close[t-1] <=
    EMA[t-1], close[t] > EMA[t]) and the lowest low of the last `peak_window` bars is at or below
    EMA[t]*(1 - depth). SELL at t (peak reversal): close crosses below the EMA and the highest high
    of the last `peak_window` bars is at or above EMA[t]*(1 + depth). Brackets relative to close[t]:
    take-profit at +/- take_profit_pct, stop-loss at -/+ stop_loss_pct (0 = none).
    Defaults: ema_span=20, peak_window=10 bars, depth=0.02, take_profit_pct=0.06, stop_loss_pct=0.03.
    """

    name = "peak_ema_reversal"
    params: ClassVar[Mapping[str, Param]] = {
        "ema_span": Param(20, "EMA span, bars", minimum=2),
        "peak_window": Param(10, "bars searched for the peak/trough", minimum=1),
        "depth": Param(0.02, "minimum distance of peak/trough from the EMA, fraction", minimum=0.0),
        "take_profit_pct": Param(0.06, "take-profit distance, fraction of close; 0 = none", minimum=0.0),
        "stop_loss_pct": Param(
            0.03, "stop-loss distance, fraction of close; 0 = none", minimum=0.0, maximum=0.99
        ),
    }

    def validate_params(self, **p: Any) -> None:
        """Require peak_window <= 3 * ema_span."""
        if p["peak_window"] > 3 * p["ema_span"]:
            raise ConfigError(
                f"peak_window must be <= 3*ema_span, was peak_window={p['peak_window']}, "
                f"ema_span={p['ema_span']}"
            )

    def get_required_lookback(self) -> int:
        """Return 3*ema_span + 1 bars."""
        return 3 * int(self.values["ema_span"]) + 1

    def decide(self, df: Window, interval: str, **p: Any) -> Signal:
        """Return a reversal signal for the last bar."""
        length = 3 * p["ema_span"]
        w = ema_weights(p["ema_span"], length)
        c = df.close
        e1 = last_window_sum(c, length, w)
        e0 = last_window_sum(c[:-1], length, w)
        k, depth = p["peak_window"], p["depth"]
        close = float(c[-1])
        tp, sl = p["take_profit_pct"], p["stop_loss_pct"]
        if c[-2] <= e0 and c[-1] > e1 and df.low[-k:].min() <= e1 * (1.0 - depth):
            return Signal(
                Side.BUY, None, close * (1.0 + tp) if tp else None, close * (1.0 - sl) if sl else None
            )
        if c[-2] >= e0 and c[-1] < e1 and df.high[-k:].max() >= e1 * (1.0 + depth):
            return Signal(
                Side.SELL, None, close * (1.0 - tp) if tp else None, close * (1.0 + sl) if sl else None
            )
        return NO_SIGNAL

    def decide_vectorized(self, candles: Candles, interval: str, **p: Any) -> SignalArrays:
        """Return the reversal signals of the whole series."""
        length = 3 * p["ema_span"]
        c = candles.close
        e1 = window_sums(c, length, ema_weights(p["ema_span"], length))
        e0, c0 = shift(e1), shift(c)
        k, depth = p["peak_window"], p["depth"]
        buy = (c0 <= e0) & (c > e1) & (rolling_min(candles.low, k) <= e1 * (1.0 - depth))
        sell = (c0 >= e0) & (c < e1) & (rolling_max(candles.high, k) >= e1 * (1.0 + depth))
        side = np.zeros(len(c), np.int8)
        side[sell] = -1
        side[buy] = 1
        return _brackets(side, c, p["take_profit_pct"], p["stop_loss_pct"])
