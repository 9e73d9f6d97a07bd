"""The built-in strategies, by registry name."""

from __future__ import annotations

from backtest_core.strategy import BaseStrategy
from backtest_core.strategy.builtins.donchian_breakout import DonchianBreakoutStrategy
from backtest_core.strategy.builtins.momentum import MomentumStrategy
from backtest_core.strategy.builtins.peak_ema_reversal import PeakEMAReversalStrategy
from backtest_core.strategy.builtins.rsi_reversion import RsiReversionStrategy
from backtest_core.strategy.builtins.sma_cross import SmaCrossStrategy

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
