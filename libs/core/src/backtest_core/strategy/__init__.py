"""Strategies: the plugin model users subclass (defined in `base`, re-exported here), the loader,
indicators and the built-ins."""

from backtest_core.strategy.base import (
    NO_SIGNAL,
    SIDE_CODE,
    BaseStrategy,
    Param,
    Side,
    Signal,
    SignalArrays,
    Window,
    as_signal,
)

__all__ = [
    "NO_SIGNAL",
    "SIDE_CODE",
    "BaseStrategy",
    "Param",
    "Side",
    "Signal",
    "SignalArrays",
    "Window",
    "as_signal",
]
