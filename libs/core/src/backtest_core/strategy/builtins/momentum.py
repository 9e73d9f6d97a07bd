"""Momentum (rate of change) with optional take-profit and stop-loss."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from backtest_core.model.candles import Candles
from backtest_core.strategy import NO_SIGNAL, BaseStrategy, Param, Side, Signal, SignalArrays, Window
from backtest_core.strategy.indicators import shift


class MomentumStrategy(BaseStrategy):
    """BUY when the rate of change crosses above +threshold, SELL when it crosses below -threshold.

    ROC[t] = close[t] / close[t-period] - 1 (a fraction). BUY at t: ROC[t-1] <= threshold < ROC[t];
    SELL at t: ROC[t-1] >= -threshold > ROC[t]. Optional brackets relative to close[t]: take-profit at
    close*(1 +/- take_profit_pct), stop-loss at close*(1 -/+ stop_loss_pct) (0 = none).
    Defaults: period=20 bars, threshold=0.0, take_profit_pct=0, stop_loss_pct=0.
    """

    name = "momentum"
    params: ClassVar[Mapping[str, Param]] = {
        "period": Param(20, "ROC look-back, bars", minimum=1),
        "threshold": Param(0.0, "ROC level to cross, fraction (0.02 = 2%)", minimum=0.0),
        "take_profit_pct": Param(0.0, "take-profit distance, fraction of close; 0 = none", minimum=0.0),
        "stop_loss_pct": Param(
            0.0, "stop-loss distance, fraction of close; 0 = none", minimum=0.0, maximum=0.99
        ),
    }

    def get_required_lookback(self) -> int:
        """Return period + 2 bars (ROC of this and the previous bar)."""
        return int(self.values["period"]) + 2

    def decide(self, df: Window, interval: str, **p: Any) -> Signal:
        """Return the ROC threshold crossing of the last two bars."""
        n, thr = p["period"], p["threshold"]
        c = df.close
        r1 = c[-1] / c[-1 - n] - 1.0
        r0 = c[-2] / c[-2 - n] - 1.0
        close = float(c[-1])
        tp, sl = p["take_profit_pct"], p["stop_loss_pct"]
        if r0 <= thr < r1:
            return Signal(
                Side.BUY, None, close * (1.0 + tp) if tp else None, close * (1.0 - sl) if sl else None
            )
        if r0 >= -thr > r1:
            return Signal(
                Side.SELL, None, close * (1.0 - tp) if tp else None, close * (1.0 + sl) if sl else None
            )
        return NO_SIGNAL

    def decide_vectorized(self, candles: Candles, interval: str, **p: Any) -> SignalArrays:
        """Return the ROC threshold crossings of the whole series."""
        n, thr = p["period"], p["threshold"]
        c = candles.close
        r1 = c / shift(c, n) - 1.0
        r0 = shift(r1)
        side = np.zeros(len(c), np.int8)
        side[(r0 <= thr) & (thr < r1)] = 1
        side[(r0 >= -thr) & (-thr > r1)] = -1
        return _brackets(side, c, p["take_profit_pct"], p["stop_loss_pct"])


def _brackets(side: np.ndarray, close: np.ndarray, tp: float, sl: float) -> SignalArrays:
    """Attach close-relative take-profit / stop-loss prices to BUY (+1) and SELL (-1) signals."""
    direction = side.astype(np.float64)
    take = close * (1.0 + direction * tp) if tp else None
    stop = close * (1.0 - direction * sl) if sl else None
    return SignalArrays.from_sides(side, take, stop)
