"""Types of the C replay loop (_replay.c); see backtest_core.engine.replay_loop."""

from typing import Any

def replay(
    symbol: Any,
    seq: Any,
    is_entry: Any,
    direction: Any,
    fills: Any,
    rates: Any,
    mark_bar: Any,
    closes: tuple[Any, ...],
    cash: float,
    size: float,
    step: float | None,
    units_at: Any,
    exit_of: Any,
    /,
) -> tuple[int, float]: ...
