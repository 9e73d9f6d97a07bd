"""The built-in strategies, by registry name."""

from __future__ import annotations

from backtest_core.strategies.donchian_breakout import DonchianBreakoutStrategy
from backtest_core.strategies.momentum import MomentumStrategy
from backtest_core.strategies.peak_ema_reversal import PeakEMAReversalStrategy
from backtest_core.strategies.rsi_reversion import RsiReversionStrategy
from backtest_core.strategies.sma_cross import SmaCrossStrategy
from backtest_core.strategy import BaseStrategy

BUILTINS: dict[str, type[BaseStrategy]] = {
    cls.name: cls
    for cls in (
        SmaCrossStrategy,
        MomentumStrategy,
        PeakEMAReversalStrategy,
        RsiReversionStrategy,
        DonchianBreakoutStrategy,
    )
}

__all__ = [
    "BUILTINS",
    "DonchianBreakoutStrategy",
    "MomentumStrategy",
    "PeakEMAReversalStrategy",
    "RsiReversionStrategy",
    "SmaCrossStrategy",
]
