"""Types of the C array kernels (_kernels_src/); see indicators.window_sums, metrics.max_drawdown, equity."""

from typing import Any

def window_sums(x: Any, n: int, weights: Any, out: Any, /) -> None: ...
def sma_cross_sides(close: Any, fast: int, slow: int, side: Any, /) -> None: ...
def drawdown(equity: Any, /) -> tuple[float, int]: ...
def equity(
    event_bar: Any,
    log: Any,
    start_cash: float,
    symbol: Any,
    direction: Any,
    units: Any,
    entry_fill: Any,
    entry_event: Any,
    exit_event: Any,
    closes: tuple[Any, ...],
    equity_out: Any,
    held_any_out: Any,
    held_count_out: Any,
    order_out: Any,
    /,
) -> int: ...
def moments(returns: Any, /) -> tuple[float, float, float, float, float]: ...
