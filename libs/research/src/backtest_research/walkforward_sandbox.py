"""The out-of-sample run of a fold as a platform backtest: the strategy wrapped so that it trades from the
test window's first bar on, as `backtest_research.walkforward.trading_from` does in process.

The wrapper is a strategy source (run in the sandbox like any uploaded one): it loads the base strategy,
computes its signals on every bar (the indicators warm up on the bars before the test window) and drops
every signal before TRADE_FROM_NS. The base must be loadable where the sandbox runs it: a built-in or an
installed module (an uploaded source is refused at submit: it would need a second module of its own).
"""

from __future__ import annotations

import json

from backtest_core.config import BacktestConfig, BuiltinStrategy, ModuleStrategy, SourceStrategy

WRAPPER_CLASS = "TradingFrom"
_WRAPPER = '''"""Walk-forward out of sample: {base} trading from {start_ns} ns (earlier signals dropped)."""

from backtest_core.loader import load_strategy_class
from backtest_core.strategy import NO_SIGNAL, BaseStrategy

BASE = load_strategy_class({spec})
TRADE_FROM_NS = {start_ns}


class TradingFrom(BASE):
    def decide(self, df, interval, **params):
        signal = super().decide(df, interval, **params)
        return signal if int(df.open_time[-1]) >= TRADE_FROM_NS else NO_SIGNAL

    if BASE.decide_vectorized is not BaseStrategy.decide_vectorized:

        def decide_vectorized(self, candles, interval, **params):
            out = super().decide_vectorized(candles, interval, **params)
            if out is not None:
                out.side[candles.open_time < TRADE_FROM_NS] = 0
            return out
'''


def wraps(config: BacktestConfig) -> bool:
    """Whether the config's strategy can be wrapped (a built-in or a module strategy)."""
    return isinstance(config.strategy, str | BuiltinStrategy | ModuleStrategy)


def trading_from_config(config: BacktestConfig, start_ns: int) -> BacktestConfig:
    """The config with its strategy wrapped to trade from `start_ns` (ns UTC) on; ValueError if it cannot."""
    spec = config.strategy
    if isinstance(spec, str):
        spec = BuiltinStrategy(builtin=spec)
    if not isinstance(spec, BuiltinStrategy | ModuleStrategy):
        raise ValueError(
            "walk-forward on the platform runs a built-in or module strategy, was an uploaded one"
        )
    literal = json.dumps(spec.model_dump(mode="json", by_alias=True), sort_keys=True)
    source = _WRAPPER.format(base=literal, spec=repr(json.loads(literal)), start_ns=int(start_ns))
    wrapped = SourceStrategy(source=source, class_name=WRAPPER_CLASS)
    return config.model_copy(update={"strategy": wrapped})
