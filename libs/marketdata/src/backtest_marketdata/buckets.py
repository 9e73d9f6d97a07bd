"""Pure bucketing of candles into large documents: which UTC chunk a bar belongs to, and packing.

A bucket holds one symbol's bars of one interval for one UTC calendar chunk: a day for 1-second bars,
a month for 1- to 30-minute bars (44,640 one-minute bars, 2.1 MB packed), a year for longer bars.
Columns are stored as packed little-endian binary (int64 ns open times, float64 prices), which reads
into numpy with one `frombuffer` per column and keeps every document far below MongoDB's 16 MB.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from backtest_core.model.candles import COLUMNS, INTERVAL_NS, Candles, interval_ns

# Field names of the packed columns inside a bucket document, in hashing order.
PACKED_FIELDS: dict[str, str] = {
    "open_time": "t",
    "open": "o",
    "high": "h",
    "low": "l",
    "close": "c",
    "volume": "v",
}
_DTYPES: dict[str, str] = {"open_time": "<i8", **dict.fromkeys(COLUMNS, "<f8")}


def bucket_unit(interval: str) -> str:
    """Return the numpy datetime unit of the bucket for `interval`: "D", "M" or "Y"."""
    length = interval_ns(interval)
    if length < INTERVAL_NS["1m"]:
        return "D"
    if length < INTERVAL_NS["1h"]:
        return "M"
    return "Y"


def bucket_starts(open_time: np.ndarray, interval: str) -> np.ndarray:
    """Return, per bar, the UTC start (int64 ns) of the bucket it belongs to."""
    unit = bucket_unit(interval)
    as_dates = open_time.astype("datetime64[ns]").astype(f"datetime64[{unit}]")
    return as_dates.astype("datetime64[ns]").astype(np.int64)


def bucket_of(time_ns: int, interval: str) -> int:
    """Return the bucket start (int64 ns) of one instant."""
    return int(bucket_starts(np.array([time_ns], dtype=np.int64), interval)[0])


@dataclass(frozen=True, slots=True)
class Columns:
    """The six columns of some bars (open_time int64 ns ascending, prices float64)."""

    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.open_time)

    @classmethod
    def of(cls, candles: Candles) -> Columns:
        """Take the columns of `candles`."""
        return cls(**{name: getattr(candles, name) for name in PACKED_FIELDS})

    def take(self, index: slice | np.ndarray) -> Columns:
        """Return the rows selected by `index`."""
        return Columns(**{name: getattr(self, name)[index] for name in PACKED_FIELDS})

    def sha256(self) -> str:
        """Hash the packed bytes of every column (equal columns give equal hashes)."""
        digest = hashlib.sha256()
        for name in PACKED_FIELDS:
            digest.update(np.ascontiguousarray(getattr(self, name), dtype=_DTYPES[name]).tobytes())
        return digest.hexdigest()

    def pack(self) -> dict[str, bytes]:
        """Return the columns as packed little-endian bytes keyed by document field."""
        return {
            field: np.ascontiguousarray(getattr(self, name), dtype=_DTYPES[name]).tobytes()
            for name, field in PACKED_FIELDS.items()
        }

    @classmethod
    def unpack(cls, document: dict[str, object]) -> Columns:
        """Read the packed columns of a bucket document (zero-copy, read-only arrays)."""
        return cls(
            **{
                name: np.frombuffer(document[field], dtype=_DTYPES[name])  # type: ignore[call-overload]
                for name, field in PACKED_FIELDS.items()
            }
        )

    @classmethod
    def concat(cls, parts: list[Columns]) -> Columns:
        """Concatenate parts in the given order into new writable arrays."""
        if not parts:
            return cls(
                open_time=np.empty(0, dtype=np.int64), **{c: np.empty(0, dtype=np.float64) for c in COLUMNS}
            )
        return cls(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in PACKED_FIELDS})


@dataclass(frozen=True, slots=True)
class MergeResult:
    """Outcome of merging incoming bars into a bucket: the union and what changed."""

    merged: Columns
    added: int
    replaced: int
    unchanged: int


def merge(existing: Columns, incoming: Columns) -> MergeResult:
    """Union two sorted column sets by open time; where both have a bar, the incoming one wins."""
    if len(existing) == 0:
        return MergeResult(incoming, added=len(incoming), replaced=0, unchanged=0)
    position = np.searchsorted(existing.open_time, incoming.open_time)
    position_clipped = np.minimum(position, len(existing) - 1)
    overlap = existing.open_time[position_clipped] == incoming.open_time
    same = overlap.copy()
    for name in COLUMNS:
        old = getattr(existing, name)[position_clipped]
        new = getattr(incoming, name)
        same &= (old == new) | (np.isnan(old) & np.isnan(new))
    overlapping = int(overlap.sum())
    unchanged = int(same.sum())
    added = len(incoming) - overlapping
    replaced = overlapping - unchanged
    if added == 0 and replaced == 0:
        return MergeResult(existing, added=0, replaced=0, unchanged=unchanged)
    keep_old = np.ones(len(existing), dtype=bool)
    keep_old[position_clipped[overlap]] = False
    combined = Columns.concat([existing.take(keep_old), incoming])
    order = np.argsort(combined.open_time, kind="stable")
    return MergeResult(combined.take(order), added=added, replaced=replaced, unchanged=unchanged)
