"""Time ranges in messages: an open bound is said in words, never printed as None."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from backtest_core.engine.run import run_backtest
from backtest_core.errors import DataError
from backtest_core.model.time_range import describe_range, describe_time

from .scripted import bars, config, scripted

pytestmark = pytest.mark.unit

JAN = datetime(2021, 1, 1, tzinfo=UTC)
MAR = datetime(2021, 3, 1, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "words"),
    [
        (None, None, "at any time"),
        (JAN, None, "from 2021-01-01 on"),
        (None, JAN, "before 2021-01-01"),
        (JAN, MAR, "between 2021-01-01 and 2021-03-01T12:30:00Z"),
    ],
)
def test_range_names_open_bounds_in_words(start, end, words):
    assert describe_range(start, end) == words


def test_time_is_a_utc_date_at_midnight_and_iso_with_z_otherwise():
    east = datetime(2021, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))

    assert describe_time(east) == "2021-01-01"  # midnight UTC
    assert describe_time(MAR + timedelta(microseconds=5)) == "2021-03-01T12:30:00.000005Z"


def test_engine_range_without_candles_says_the_open_bound_in_words() -> None:
    candles = bars("AAA", [(10, 10, 10, 10), (11, 11, 11, 11)])  # days 0 and 1 of 1970
    later = config(scripted({}), ["AAA"], start=JAN)

    with pytest.raises(DataError) as raised:
        run_backtest(later, {"AAA": candles})

    assert str(raised.value) == "no candles for AAA from 2021-01-01 on"
