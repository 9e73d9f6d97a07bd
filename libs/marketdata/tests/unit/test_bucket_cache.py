"""BucketCache: an LRU of bucket columns bounded by bytes."""

from __future__ import annotations

import numpy as np
import pytest
from backtest_marketdata.bucket_cache import BucketCache, columns_bytes
from backtest_marketdata.buckets import Columns


def _bucket(rows: int) -> Columns:
    values = np.arange(rows, dtype=np.float64)
    return Columns(np.arange(rows, dtype=np.int64), values, values, values, values, values)


def test_the_least_recently_used_bucket_goes_first_beyond_the_byte_cap() -> None:
    size = columns_bytes(_bucket(100))
    assert size == 100 * 8 * 6
    cache = BucketCache(2 * size)
    a, b, c = _bucket(100), _bucket(100), _bucket(100)
    cache.put(("X", "1m", 1, "a"), a)
    cache.put(("X", "1m", 2, "b"), b)
    assert cache.get(("X", "1m", 1, "a")) is a  # now b is the least recently used
    cache.put(("X", "1m", 3, "c"), c)

    assert cache.get(("X", "1m", 2, "b")) is None
    assert cache.get(("X", "1m", 1, "a")) is a and cache.get(("X", "1m", 3, "c")) is c
    assert (len(cache), cache.bytes, cache.hits, cache.misses) == (2, 2 * size, 3, 1)


def test_a_bucket_larger_than_the_cap_is_not_held_and_a_negative_cap_is_refused() -> None:
    cache = BucketCache(100)
    cache.put(("X", "1m", 1, "a"), _bucket(100))
    assert len(cache) == 0 and cache.bytes == 0
    with pytest.raises(ValueError, match="max_bytes must be >= 0"):
        BucketCache(-1)
