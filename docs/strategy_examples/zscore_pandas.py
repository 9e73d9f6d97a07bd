"""Example 2 (docs/strategies.md): mean reversion on a z-score computed with pandas, long and short.

`df` holds numpy arrays; `df.to_pandas()` gives a DataFrame indexed by UTC open time when pandas is
the easier tool (it costs a copy per bar). With `--allow-short`, SELL opens a short when flat.
"""

from typing import ClassVar

from backtest_core.strategy import NO_SIGNAL, BaseStrategy, Param, Side, Signal


class ZScoreReversion(BaseStrategy):
    params: ClassVar[dict[str, Param]] = {
        "window": Param(20, "bars of the rolling mean and standard deviation", minimum=2),
        "entry": Param(2.0, "z-score beyond which to fade the move", minimum=0.0),
    }

    def get_required_lookback(self) -> int:
        return int(self.values["window"])

    def decide(self, df, interval, **p):
        frame = df.to_pandas()  # columns open, high, low, close, volume; the last row is this bar
        close = frame["close"]
        last, sd = close.iloc[-1], close.std()  # pandas' std: ddof=1
        z = (last - close.mean()) / sd
        # A stop `entry` standard deviations further away: below a long's entry, above a short's.
        if z < -p["entry"]:
            return Signal(Side.BUY, stop_loss=last - p["entry"] * sd)  # far below the mean: buy
        if z > p["entry"]:
            # Far above: close a long, or (with --allow-short) open a short.
            return Signal(Side.SELL, stop_loss=last + p["entry"] * sd)
        return NO_SIGNAL
