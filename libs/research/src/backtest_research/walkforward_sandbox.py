"""The out-of-sample run of a fold as a platform backtest: the strategy wrapped so that it trades from the
test window's first bar on, as `backtest_research.walkforward.trading_from` does in process.

The wrapper is a strategy source (run in the sandbox like any uploaded one): it loads the base strategy,
computes its signals on every bar (the indicators warm up on the bars before the test window) and drops
every signal before TRADE_FROM_NS. The base is any strategy the sandbox loads: a built-in, an installed
module, or an uploaded source (its source and helper files travel inside the wrapper's spec; its helper
files are the wrapper's too).
"""

from __future__ import annotations

import json

from backtest_core.model.config import BacktestConfig, BuiltinStrategy, SourceStrategy
from pydantic import ValidationError

WRAPPER_CLASS = "TradingFrom"
_WRAPPER = '''"""Walk-forward out of sample: {base} trading from {start_ns} ns (earlier signals dropped)."""

from backtest_core.strategy.loader import load_strategy_class
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


def wraps(config: BacktestConfig) -> str | None:
    """Why the config's strategy cannot be wrapped (e.g. a source too large to carry twice), else None."""
    try:
        trading_from_config(config, 0)
    except ValueError as error:
        return str(error)
    return None


def trading_from_config(config: BacktestConfig, start_ns: int) -> BacktestConfig:
    """The config with its strategy wrapped to trade from `start_ns` (ns UTC) on; ValueError if it cannot."""
    spec = config.strategy
    if isinstance(spec, str):
        spec = BuiltinStrategy(builtin=spec)
    uploaded = spec if isinstance(spec, SourceStrategy) else None
    dumped = spec.model_dump(mode="json", by_alias=True, exclude={"name", "version"} if uploaded else None)
    shown = uploaded.name if uploaded and uploaded.name else dumped.get("builtin") or dumped.get("module")
    source = _WRAPPER.format(base=json.dumps(shown or "uploaded"), spec=repr(dumped), start_ns=int(start_ns))
    try:
        wrapped = SourceStrategy(
            source=source,
            class_name=WRAPPER_CLASS,
            files=uploaded.files if uploaded else {},
            name=uploaded.name if uploaded else None,
            version=uploaded.version if uploaded else None,
        )
    except ValidationError as error:
        raise ValueError(
            f"the strategy cannot be wrapped for its test runs: {error.errors()[0]['msg']}"
        ) from None
    return config.model_copy(update={"strategy": wrapped})
