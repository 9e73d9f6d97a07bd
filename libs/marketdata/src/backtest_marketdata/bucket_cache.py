"""`BucketCache`: unpacked candle buckets kept in memory by their content hash, for a process that loads
the same bars again and again (a runner: every chunk of a sweep, every backtest of a batch).

A bucket is keyed by (symbol, interval, bucket, sha256 of its bars), so a re-ingested bucket (new bars,
a new hash) is never answered from the cache: the store asks for the hashes first (a small query) and
fetches only the buckets it does not hold. Least recently used buckets go beyond `max_bytes`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from backtest_marketdata.buckets import PACKED_FIELDS, Columns

BucketKey = tuple[str, str, int, str]  # symbol, interval, bucket, sha256


def columns_bytes(columns: Columns) -> int:
    """The bytes a bucket's arrays hold."""
    return sum(getattr(columns, name).nbytes for name in PACKED_FIELDS)


class BucketCache:
    """Thread-safe LRU of bucket columns up to `max_bytes`; `hits` and `misses` count lookups."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._bytes = 0
        self._entries: OrderedDict[BucketKey, Columns] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """The bytes held."""
        return self._bytes

    def get(self, key: BucketKey) -> Columns | None:
        """The bucket's columns if held (then it is the most recently used)."""
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: BucketKey, columns: Columns) -> None:
        """Hold the bucket's columns (read-only arrays), dropping the least recently used beyond the cap."""
        size = columns_bytes(columns)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= columns_bytes(old)
            self._entries[key] = columns
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= columns_bytes(dropped)
