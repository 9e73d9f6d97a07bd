"""Example 1 (docs/strategies.md): a per-bar breakout with a take-profit and a stop-loss, numpy only.

Buy when the close breaks above the highest high of the previous `window` bars; the position exits at
`take_profit` above or `stop_loss` below the close that signalled it, whichever the bars touch first.
"""

from typing import ClassVar

from backtest_core.strategy import NO_SIGNAL, BaseStrategy, Param, Side, Signal


class Breakout(BaseStrategy):
    params: ClassVar[dict[str, Param]] = {
        "window": Param(20, "bars of highs the close must break, before this one", minimum=2),
        "take_profit": Param(0.10, "exit this fraction above the signal's close", minimum=0.0),
        "stop_loss": Param(0.05, "exit this fraction below the signal's close", minimum=0.0, maximum=0.99),
    }

    def get_required_lookback(self) -> int:
        return int(self.values["window"]) + 1  # the window before this bar, and this bar

    def decide(self, df, interval, **p):
        # df.high and df.close are numpy arrays, oldest first; [-1] is this bar (no later bar exists).
        previous_high = df.high[:-1].max()
        close = df.close[-1]
        if close > previous_high:
            target, stop = close * (1 + p["take_profit"]), close * (1 - p["stop_loss"])
            return Signal(Side.BUY, take_profit=target, stop_loss=stop)
        return NO_SIGNAL
