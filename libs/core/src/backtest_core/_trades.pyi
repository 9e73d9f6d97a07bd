"""Types of the C trade builder (_trades.c); see backtest_core.trade_rows."""

from datetime import datetime, tzinfo
from typing import Any

def build(
    cls: type[Any],
    keys: tuple[str, ...],
    fields: frozenset[str],
    setters: tuple[Any, ...],
    lookups: tuple[tuple[Any, ...], ...],
    codes: tuple[Any, ...],
    values: tuple[Any, ...],
    held: Any,
    /,
) -> list[Any]: ...
def datetimes(ns: Any, tz: tzinfo, /) -> list[datetime]: ...
