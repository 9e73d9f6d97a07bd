"""`MongoCandleStore`: candles in bucketed documents of packed columns, one per symbol/interval/UTC chunk."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
from backtest_core.errors import DataError
from backtest_core.model.candles import Candles, interval_ns
from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError
from pymongo.write_concern import WriteConcern

from backtest_marketdata.bucket_cache import BucketCache
from backtest_marketdata.buckets import PACKED_FIELDS, Columns, bucket_of, bucket_starts, merge
from backtest_marketdata.models import Coverage, Gap, WriteReport

CANDLES_COLLECTION = "candles"
MAX_WRITE_ATTEMPTS = 8
_META = {"_id": 0, "bucket": 1, "first": 1, "last": 1, "count": 1, "sha256": 1}
_PACKED = {"_id": 0, "bucket": 1, **dict.fromkeys(PACKED_FIELDS.values(), 1)}


class ConcurrentWriteError(DataError):
    """A bucket kept changing under a write; retrying later is safe."""


class MongoCandleStore:
    """Candles of many symbols in the `candles` collection, one document per symbol, interval and bucket.

    Writes go to the primary with majority write concern and are idempotent: a bar already stored with
    the same values changes nothing. Pass a database from a read-only, secondary-preferred client to a
    store that only loads. With a `cache`, a load asks for the buckets' hashes first and fetches only the
    buckets the cache does not hold by that hash (backtest_marketdata.bucket_cache).
    """

    def __init__(
        self,
        db: Database[dict[str, Any]],
        collection: str = CANDLES_COLLECTION,
        cache: BucketCache | None = None,
    ) -> None:
        self._read: Collection[dict[str, Any]] = db[collection]
        self._write = self._read.with_options(write_concern=WriteConcern("majority"))
        self._cache = cache

    def ensure_indexes(self) -> None:
        """Create the unique (symbol, interval, bucket) index (needs a writing user)."""
        self._write.create_index(
            [("symbol", ASCENDING), ("interval", ASCENDING), ("bucket", ASCENDING)],
            unique=True,
            name="symbol_interval_bucket",
        )

    # --- writing ---------------------------------------------------------------------------------

    def write(self, candles: Candles) -> WriteReport:
        """Merge `candles` into the stored buckets; incoming bars replace stored bars of the same time."""
        report = WriteReport(symbol=candles.symbol, interval=candles.interval)
        if len(candles) == 0:
            return report
        columns = Columns.of(candles)
        for bucket, part in _by_bucket(columns, candles.interval):
            report = report + self._write_bucket(candles.symbol, candles.interval, bucket, part)
        return report

    def _write_bucket(self, symbol: str, interval: str, bucket: int, incoming: Columns) -> WriteReport:
        key = {"symbol": symbol, "interval": interval, "bucket": bucket}
        for _ in range(MAX_WRITE_ATTEMPTS):
            stored = self._write.find_one(key, _PACKED | {"sha256": 1})
            existing = Columns.unpack(stored) if stored else Columns.concat([])
            result = merge(existing, incoming)
            report = WriteReport(
                symbol=symbol,
                interval=interval,
                added=result.added,
                replaced=result.replaced,
                unchanged=result.unchanged,
            )
            if result.added == 0 and result.replaced == 0:
                return report
            document = self._document(key, result.merged)
            if stored is None:
                try:
                    self._write.insert_one(document)
                except DuplicateKeyError:
                    continue
            else:
                outcome = self._write.replace_one(key | {"sha256": stored["sha256"]}, document)
                if outcome.matched_count != 1:
                    continue
            return report.model_copy(update={"buckets_written": 1})
        raise ConcurrentWriteError(
            f"{symbol} {interval}: bucket {_iso(bucket)} changed under {MAX_WRITE_ATTEMPTS} write attempts"
        )

    @staticmethod
    def _document(key: dict[str, Any], columns: Columns) -> dict[str, Any]:
        return {
            "_id": f"{key['symbol']}|{key['interval']}|{key['bucket']}",
            **key,
            "first": int(columns.open_time[0]),
            "last": int(columns.open_time[-1]),
            "count": len(columns),
            "sha256": columns.sha256(),
            "updated_at": datetime.now(UTC),
            **columns.pack(),
        }

    def delete(self, symbol: str, interval: str | None = None) -> int:
        """Delete a symbol's buckets (of one interval, or all); return the number of documents deleted."""
        query: dict[str, Any] = {"symbol": symbol}
        if interval is not None:
            query["interval"] = interval
        return int(self._write.delete_many(query).deleted_count)

    # --- reading ---------------------------------------------------------------------------------

    def load(
        self, symbol: str, interval: str, start_ns: int | None = None, end_ns: int | None = None
    ) -> Candles:
        """Return the stored bars with start_ns <= open_time < end_ns (None: unbounded), as numpy arrays."""
        interval_ns(interval)
        if self._cache is None:
            parts = [
                Columns.unpack(doc) for doc in self._buckets(symbol, interval, start_ns, end_ns, _PACKED)
            ]
        else:
            parts = self._cached_parts(self._cache, symbol, interval, start_ns, end_ns)
        columns = Columns.concat(parts)
        candles = Candles(symbol=symbol, interval=interval, **_as_kwargs(columns))
        if start_ns is None and end_ns is None:
            return candles
        return candles.between(start_ns, end_ns)

    def _cached_parts(
        self, cache: BucketCache, symbol: str, interval: str, start_ns: int | None, end_ns: int | None
    ) -> list[Columns]:
        """The buckets of the range in order: held ones from `cache` by their stored hash, the others
        fetched (one query) and put in it under the hash they were stored with."""
        metas = list(self._buckets(symbol, interval, start_ns, end_ns, _META))
        parts: dict[int, Columns] = {}
        for meta in metas:
            held = cache.get((symbol, interval, meta["bucket"], str(meta["sha256"])))
            if held is not None:
                parts[meta["bucket"]] = held
        missing = [meta["bucket"] for meta in metas if meta["bucket"] not in parts]
        if missing:
            query = {"symbol": symbol, "interval": interval, "bucket": {"$in": missing}}
            for doc in self._read.find(query, {**_PACKED, "sha256": 1}):
                columns = Columns.unpack(doc)
                parts[doc["bucket"]] = columns
                cache.put((symbol, interval, doc["bucket"], str(doc["sha256"])), columns)
        return [parts[bucket] for bucket in sorted(parts)]

    def open_times(
        self, symbol: str, interval: str, start_ns: int | None = None, end_ns: int | None = None
    ) -> np.ndarray:
        """Return only the stored open times (int64 UTC ns) in [start_ns, end_ns)."""
        docs = self._buckets(symbol, interval, start_ns, end_ns, {"_id": 0, "bucket": 1, "t": 1})
        times = np.concatenate([np.frombuffer(d["t"], dtype="<i8") for d in docs] or [np.empty(0, np.int64)])
        lo = 0 if start_ns is None else int(np.searchsorted(times, start_ns))
        hi = len(times) if end_ns is None else int(np.searchsorted(times, end_ns))
        return times[lo:hi].astype(np.int64)

    def fingerprint(
        self, symbol: str, interval: str, start_ns: int | None = None, end_ns: int | None = None
    ) -> str:
        """Return a SHA-256 that changes if and only if the stored bars in [start_ns, end_ns) change.

        Buckets wholly inside the range contribute their stored hash; only the edge buckets are read.
        """
        return range_fingerprint(
            symbol, interval, start_ns, end_ns, self._bucket_digests(symbol, interval, start_ns, end_ns)
        )

    def _bucket_digests(
        self, symbol: str, interval: str, start_ns: int | None, end_ns: int | None
    ) -> Iterator[str]:
        """Yield, per stored bucket in order, the SHA-256 of its bars inside [start_ns, end_ns)."""
        lo = -(2**63) if start_ns is None else start_ns
        hi = 2**63 - 1 if end_ns is None else end_ns
        for meta in self._buckets(symbol, interval, start_ns, end_ns, _META):
            if meta["first"] >= lo and meta["last"] < hi:
                yield str(meta["sha256"])
                continue
            key = {"symbol": symbol, "interval": interval, "bucket": meta["bucket"]}
            columns = Columns.unpack(self._read.find_one(key, _PACKED) or {})
            inside = (columns.open_time >= lo) & (columns.open_time < hi)
            if bool(inside.any()):
                yield columns.take(inside).sha256()

    def gaps(
        self, symbol: str, interval: str, start_ns: int | None = None, end_ns: int | None = None
    ) -> list[Gap]:
        """Return the runs of missing bars between the first and last stored bar in the range."""
        return find_gaps(self.open_times(symbol, interval, start_ns, end_ns), interval)

    def coverage(self, symbol: str, interval: str) -> Coverage:
        """Return first/last open time, bar count and gaps of one symbol and interval."""
        times = self.open_times(symbol, interval)
        gaps = find_gaps(times, interval)
        missing = sum(g.missing for g in gaps)
        return Coverage(
            symbol=symbol,
            interval=interval,
            first_ns=int(times[0]) if len(times) else None,
            last_ns=int(times[-1]) if len(times) else None,
            count=len(times),
            expected=len(times) + missing,
            gaps=len(gaps),
            missing=missing,
        )

    def series(self) -> list[tuple[str, str]]:
        """Return every stored (symbol, interval) pair, sorted."""
        pipeline = [{"$group": {"_id": {"symbol": "$symbol", "interval": "$interval"}}}]
        pairs = {(row["_id"]["symbol"], row["_id"]["interval"]) for row in self._read.aggregate(pipeline)}
        return sorted(pairs)

    def _buckets(
        self,
        symbol: str,
        interval: str,
        start_ns: int | None,
        end_ns: int | None,
        projection: dict[str, Any],
    ) -> Iterator[dict[str, Any]]:
        query: dict[str, Any] = {"symbol": symbol, "interval": interval}
        bucket_range: dict[str, int] = {}
        if start_ns is not None:
            bucket_range["$gte"] = bucket_of(start_ns, interval)
        if end_ns is not None:
            bucket_range["$lte"] = bucket_of(end_ns - 1, interval)
        if bucket_range:
            query["bucket"] = bucket_range
        documents = list(self._read.find(query, projection))
        documents.sort(key=lambda doc: doc["bucket"])
        return iter(documents)


def range_fingerprint(
    symbol: str, interval: str, start_ns: int | None, end_ns: int | None, bucket_digests: Iterable[str]
) -> str:
    """Combine the per-bucket digests of the bars in [start_ns, end_ns) into the range's fingerprint."""
    digest = hashlib.sha256(f"{symbol}|{interval}|{start_ns}|{end_ns}".encode())
    for bucket_digest in bucket_digests:
        digest.update(bucket_digest.encode())
    return digest.hexdigest()


def candles_fingerprint(candles: Candles) -> tuple[int, int, str]:
    """Return (start_ns, end_ns, fingerprint) that `fingerprint` gives when the store holds exactly
    `candles` in their range [first open time, last open time + 1 ns)."""
    if len(candles) == 0:
        raise DataError(
            f"{candles.symbol} {candles.interval}: expected at least one bar to fingerprint, was 0"
        )
    columns = Columns.of(candles)
    digests = (part.sha256() for _, part in _by_bucket(columns, candles.interval))
    start_ns, end_ns = int(columns.open_time[0]), int(columns.open_time[-1]) + 1
    return start_ns, end_ns, range_fingerprint(candles.symbol, candles.interval, start_ns, end_ns, digests)


def find_gaps(times: np.ndarray, interval: str) -> list[Gap]:
    """Return the runs of missing bars in sorted open times (int64 ns); "1M" uses calendar months."""
    if len(times) < 2:
        return []
    if interval == "1M":
        steps = np.diff(times.astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64))
        holes = np.flatnonzero(steps > 1)
        starts = (times[holes].astype("datetime64[ns]").astype("datetime64[M]") + 1).astype("datetime64[ns]")
        return [
            Gap(start_ns=int(s.astype(np.int64)), end_ns=int(times[i + 1]), missing=int(steps[i] - 1))
            for i, s in zip(holes, starts, strict=True)
        ]
    step = interval_ns(interval)
    diffs = np.diff(times)
    holes = np.flatnonzero(diffs > step)
    return [
        Gap(start_ns=int(times[i] + step), end_ns=int(times[i + 1]), missing=int((diffs[i] - 1) // step))
        for i in holes
    ]


def _by_bucket(columns: Columns, interval: str) -> Iterator[tuple[int, Columns]]:
    """Yield (bucket start ns, the bars of that bucket) for sorted bars, in order."""
    starts = bucket_starts(columns.open_time, interval)
    bounds = [0, *(np.flatnonzero(np.diff(starts)) + 1).tolist(), len(starts)]
    for lo, hi in itertools.pairwise(bounds):
        yield int(starts[lo]), columns.take(slice(lo, hi))


def _as_kwargs(columns: Columns) -> dict[str, np.ndarray]:
    return {name: getattr(columns, name) for name in PACKED_FIELDS}


def _iso(time_ns: int) -> str:
    return str(np.datetime64(time_ns, "ns"))[:19] + "Z"
