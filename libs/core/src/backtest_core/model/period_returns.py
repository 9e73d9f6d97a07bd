"""The returns table: the equity's return in each calendar month and year (UTC) of a run.

A bar belongs to the period of its open time. A period's return is the equity at the close of its last
bar over the equity at the close of the previous period's last bar (the start equity for the first
period) - 1, in percent: the per-bar returns compounded within the period, as empyrical's
`aggregate_returns(returns, "monthly" | "yearly")` compounds them.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from backtest_core.model.config import Frozen

PeriodUnit = Literal["month", "year"]
_NUMPY_UNIT = {"month": "M", "year": "Y"}


class PeriodReturn(Frozen):
    """The equity's return over one calendar period: `period` is "2019-03" for a month, "2019" for a year."""

    period: str
    return_pct: float | None  # None when the equity before the period was not positive


def period_returns(
    times_ns: np.ndarray, equity: np.ndarray, start_equity: float, unit: PeriodUnit
) -> list[PeriodReturn]:
    """Return one `PeriodReturn` per calendar month or year holding a bar, in time order.

    `times_ns`: the bars' open times, ascending (epoch nanoseconds, UTC).
    """
    if len(times_ns) != len(equity):
        raise ValueError(f"expected one equity value per bar time ({len(times_ns)}), got {len(equity)}")
    if len(equity) == 0:
        return []
    times = np.asarray(times_ns, np.int64)
    span = times[[0, -1]].astype("datetime64[ns]").astype(f"datetime64[{_NUMPY_UNIT[unit]}]")
    periods = np.arange(span[0], span[1] + 1)  # every calendar period from the first bar's to the last's
    first_bar = np.searchsorted(times, periods.astype("datetime64[ns]").astype(np.int64), side="left")
    stop_bar = np.r_[first_bar[1:], len(times)]
    held = stop_bar > first_bar  # periods holding at least one bar (sorted times)
    ends = np.asarray(equity, np.float64)[stop_bar[held] - 1]
    starts = np.r_[start_equity, ends[:-1]]
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(starts > 0, (ends / starts - 1.0) * 100.0, np.nan)
    names = np.datetime_as_string(periods[held]).tolist()
    return [
        PeriodReturn(period=name, return_pct=value if np.isfinite(value) else None)
        for name, value in zip(names, pct.tolist(), strict=True)
    ]
