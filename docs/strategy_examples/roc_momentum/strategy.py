"""Example 3 (docs/strategies.md): a package (entry module + helper) with a vectorized path.

Momentum: BUY on the bar the rate of change over `bars` bars crosses above `threshold`, SELL on the
bar it crosses back below. `decide_vectorized` computes every bar's signal at once with the same
arithmetic as `decide` (the helper's one division per bar), so both paths give the same result bit for
bit; the engine uses the vectorized one when it exists. `validate_params` refuses combinations.
"""

from typing import ClassVar

import numpy as np
from backtest_core.errors import ConfigError
from backtest_core.strategy import NO_SIGNAL, BaseStrategy, Param, Side, Signal, SignalArrays
from roc_tools import rate_of_change


class RocMomentum(BaseStrategy):
    params: ClassVar[dict[str, Param]] = {
        "bars": Param(10, "bars the rate of change looks back", minimum=1),
        "threshold": Param(0.05, "rate of change (fraction) to cross", minimum=-1.0),
    }

    def validate_params(self, bars, threshold):
        if bars > 365:
            raise ConfigError(f"bars must be <= 365, was bars={bars}")

    def get_required_lookback(self) -> int:
        return int(self.values["bars"]) + 2  # this bar's and the previous bar's rate of change

    def decide(self, df, interval, **p):
        before, now = rate_of_change(df.close, p["bars"]) > p["threshold"]
        if now and not before:
            return Signal(Side.BUY)
        if before and not now:
            return Signal(Side.SELL)
        return NO_SIGNAL

    def decide_vectorized(self, candles, interval, **p):
        above = rate_of_change(candles.close, p["bars"]) > p["threshold"]  # above[k] is bar k + bars
        side = np.zeros(len(candles), np.int8)
        crossed_up = above[1:] & ~above[:-1]
        crossed_down = above[:-1] & ~above[1:]
        side[p["bars"] + 1 :][crossed_up] = 1
        side[p["bars"] + 1 :][crossed_down] = -1
        return SignalArrays.market(side)
