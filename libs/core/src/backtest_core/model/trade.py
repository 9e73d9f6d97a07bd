"""One closed trade of a backtest, as users and the API see it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from backtest_core.model.config import Frozen

ExitReason = Literal["take_profit", "stop_loss", "signal", "time_limit", "end_of_data"]


class Trade(Frozen):
    """One closed (or, at the end of data, still open and marked) position. Prices in quote currency."""

    symbol: str
    side: Literal["long", "short"]
    units: float
    entry_time: datetime
    entry_price: float
    exit_time: datetime
    exit_price: float
    exit_reason: ExitReason
    pnl: float = Field(description="net of fees, quote currency")
    return_pct: float
    fees: float
    bars_held: int
