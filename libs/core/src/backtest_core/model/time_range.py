"""Time ranges: in words for messages (an open bound is said as open, never printed as None) and as
the engine's epoch nanoseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ns(moment: datetime) -> int:
    """Return a datetime as int nanoseconds since the epoch, exact to the microsecond (naive = UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (aware - EPOCH) // timedelta(microseconds=1) * 1_000


def describe_time(moment: datetime) -> str:
    """Format a time in UTC: the date alone at midnight, ISO-8601 with `Z` otherwise."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    if (utc.hour, utc.minute, utc.second, utc.microsecond) == (0, 0, 0, 0):
        return utc.date().isoformat()
    return utc.replace(tzinfo=None).isoformat() + "Z"


def describe_range(start: datetime | None, end: datetime | None) -> str:
    """Describe [start, end) for a message: "between A and B", "from A on", "before B", "at any time"."""
    if start is None:
        return "at any time" if end is None else f"before {describe_time(end)}"
    if end is None:
        return f"from {describe_time(start)} on"
    return f"between {describe_time(start)} and {describe_time(end)}"
