"""RSI mean reversion."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from backtest_core.errors import ConfigError
from backtest_core.model.candles import Candles
from backtest_core.strategy import NO_SIGNAL, BaseStrategy, Param, Side, Signal, SignalArrays, Window
from backtest_core.strategy.indicators import last_window_sum, shift, window_sums

_BUY = Signal(Side.BUY)
_SELL = Signal(Side.SELL)


def _rsi(gain: float | np.ndarray, loss: float | np.ndarray) -> Any:
    gain, loss = np.asarray(gain, dtype=np.float64), np.asarray(loss, dtype=np.float64)
    total = gain + loss
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, 100.0 * gain / total, 50.0)


class RsiReversionStrategy(BaseStrategy):
    """BUY when RSI drops below `oversold`, SELL when it rises above `overbought`.

    RSI[t] = 100 * G / (G + L) over the last `period` close-to-close changes (simple sums, Cutler's
    RSI; 50 when nothing moved), G = sum of gains, L = sum of losses. BUY at t: RSI[t-1] >= oversold >
    RSI[t]; SELL at t: RSI[t-1] <= overbought < RSI[t]. Market orders, no brackets.
    Defaults: period=14 bars, oversold=30, overbought=70.
    """

    name = "rsi_reversion"
    params: ClassVar[Mapping[str, Param]] = {
        "period": Param(14, "RSI length, bars", minimum=2),
        "oversold": Param(30.0, "RSI level that triggers BUY, 0-100", minimum=0.0, maximum=100.0),
        "overbought": Param(70.0, "RSI level that triggers SELL, 0-100", minimum=0.0, maximum=100.0),
    }

    def validate_params(self, **p: Any) -> None:
        """Require oversold < overbought."""
        if p["oversold"] >= p["overbought"]:
            raise ConfigError(
                f"oversold must be < overbought, was oversold={p['oversold']}, overbought={p['overbought']}"
            )

    def get_required_lookback(self) -> int:
        """Return period + 2 bars (RSI of this and the previous bar)."""
        return int(self.values["period"]) + 2

    def decide(self, df: Window, interval: str, **p: Any) -> Signal:
        """Return the RSI level crossing of the last two bars."""
        n = p["period"]
        d = np.diff(df.close)
        gain, loss = np.maximum(d, 0.0), np.maximum(-d, 0.0)
        r1 = _rsi(last_window_sum(gain, n), last_window_sum(loss, n))
        r0 = _rsi(last_window_sum(gain[:-1], n), last_window_sum(loss[:-1], n))
        if r0 >= p["oversold"] > r1:
            return _BUY
        if r0 <= p["overbought"] < r1:
            return _SELL
        return NO_SIGNAL

    def decide_vectorized(self, candles: Candles, interval: str, **p: Any) -> SignalArrays:
        """Return the RSI crossings of the whole series."""
        n = p["period"]
        d = np.diff(candles.close, prepend=np.nan)
        gain, loss = np.maximum(d, 0.0), np.maximum(-d, 0.0)
        g, lo = window_sums(gain, n), window_sums(loss, n)
        r1 = np.where(np.isnan(g + lo), np.nan, _rsi(g, lo))
        r0 = shift(r1)
        side = np.zeros(len(candles), np.int8)
        side[(r0 <= p["overbought"]) & (p["overbought"] < r1)] = -1
        side[(r0 >= p["oversold"]) & (p["oversold"] > r1)] = 1
        return SignalArrays.market(side)
