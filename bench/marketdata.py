"""Market-data throughput: CSV ingest and candle reads, bucketed store vs one document per candle.

    python bench/marketdata.py [--candles 525600] [--naive-candles 525600] [--repeat 3]

Uses ``MONGODB_URI`` when set, else starts SecantusDB (deploy/mongo-emulator/launch.py) on a free
loopback port with its data on /dev/shm, and stops it at the end. Data: one symbol-year of 1-minute
bars (525,600; fixed-seed random walk) written as 12 monthly Binance spot kline CSV files.
Measures, in one run against the same server:
  ingest  - `Ingestor.ingest` of the 12 files (read + parse + merge + majority writes), candles/s;
  read    - `MongoCandleStore.load` of the whole year into numpy, best of --repeat, candles/s;
  naive   - the same bars as one document per candle (insert_many, index on symbol/interval/t),
            read back sorted into numpy arrays, candles/s.
Targets (issue 4): read >= 20x naive and >= 1M candles/s; ingest >= 200k candles/s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from backtest_marketdata.candle_store import MongoCandleStore
from backtest_marketdata.ingest import Ingestor
from platform_bench import infra
from pymongo import ASCENDING, MongoClient

MINUTE_MS = 60_000
START_MS = 1_704_067_200_000  # 2024-01-01T00:00Z
SYMBOL = "BENCHUSDT"


def write_year(folder: Path, count: int) -> list[Path]:
    """Write `count` one-minute bars as monthly Binance spot kline CSVs (no header, ms)."""
    rng = np.random.default_rng(20240101)
    close = 42_000.0 * np.exp(np.cumsum(rng.normal(0.0, 8e-4, count)))
    open_ = np.concatenate([[42_000.0], close[:-1]])
    spread = np.abs(rng.normal(0.0, 4e-4, count)) * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    volume = rng.gamma(2.0, 3.0, count)
    open_ms = START_MS + np.arange(count, dtype=np.int64) * MINUTE_MS
    months = open_ms.astype("datetime64[ms]").astype("datetime64[M]")
    paths = []
    for month in np.unique(months):
        rows = np.flatnonzero(months == month)
        lines = [
            f"{t},{o:.2f},{h:.2f},{lo:.2f},{c:.2f},{v:.5f},{t + MINUTE_MS - 1},{v * c:.4f},{int(v * 10)},"
            f"{v / 2:.5f},{v * c / 2:.4f},0"
            for t, o, h, lo, c, v in zip(
                open_ms[rows], open_[rows], high[rows], low[rows], close[rows], volume[rows], strict=True
            )
        ]
        path = folder / f"{SYMBOL}-1m-{month}.csv"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def best_of(repeat: int, action: object) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times)


def naive_read(collection: object) -> int:
    docs = list(
        collection.find(
            {"symbol": SYMBOL, "interval": "1m"}, {"_id": 0, "t": 1, "o": 1, "h": 1, "l": 1, "c": 1, "v": 1}
        ).sort("t", ASCENDING)
    )  # type: ignore[attr-defined]
    open_time = np.fromiter((d["t"] for d in docs), dtype=np.int64, count=len(docs))
    columns = {k: np.fromiter((d[k] for d in docs), dtype=np.float64, count=len(docs)) for k in "ohlcv"}
    return len(open_time) + 0 * len(columns)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--candles", type=int, default=525_600)
    parser.add_argument("--naive-candles", type=int, default=525_600)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    scratch = Path(
        tempfile.mkdtemp(prefix="bench-marketdata-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None)
    )
    uri = os.environ.get("MONGODB_URI")
    server = None
    if uri is None:
        server = infra.MongoEmulator(scratch, auth=False)  # the tests' launcher: a free port, ping-ready
        server.start()
        uri = server.uri
        print(f"server: SecantusDB 0.7.0b3 emulator (started for this run), {uri}")
    else:
        print("server: MONGODB_URI")
    client: MongoClient[dict[str, object]] = MongoClient(uri, w="majority")
    db = client[f"bench_{uuid.uuid4().hex[:8]}"]
    try:
        files_dir = scratch / "files"
        files_dir.mkdir()
        paths = write_year(files_dir, args.candles)
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
        print(
            f"data: {args.candles:,} one-minute bars in {len(paths)} monthly CSV files ({megabytes:.0f} MB)"
        )

        ingestor = Ingestor(db)
        ingestor.ensure_indexes()
        started = time.perf_counter()
        summary = ingestor.ingest(paths)
        ingest_s = time.perf_counter() - started
        assert summary.candles_added == args.candles, summary
        started = time.perf_counter()
        again = ingestor.ingest(paths, force=True)
        reingest_s = time.perf_counter() - started
        assert again.candles_added == 0

        store = MongoCandleStore(db)
        read_s = best_of(args.repeat, lambda: store.load(SYMBOL, "1m"))
        loaded = store.load(SYMBOL, "1m")
        assert len(loaded) == args.candles
        fingerprint_s = best_of(args.repeat, lambda: store.fingerprint(SYMBOL, "1m"))

        naive = db["naive_candles"]
        naive.create_index([("symbol", ASCENDING), ("interval", ASCENDING), ("t", ASCENDING)], unique=True)
        n = args.naive_candles
        documents = [
            {"symbol": SYMBOL, "interval": "1m", "t": int(loaded.open_time[i]), "o": float(loaded.open[i]),
             "h": float(loaded.high[i]), "l": float(loaded.low[i]), "c": float(loaded.close[i]),
             "v": float(loaded.volume[i])}
            for i in range(n)
        ]  # fmt: skip
        started = time.perf_counter()
        for lo in range(0, n, 10_000):
            naive.insert_many(documents[lo : lo + 10_000], ordered=False)
        naive_insert_s = time.perf_counter() - started
        naive_read_s = best_of(max(1, args.repeat - 2), lambda: naive_read(naive))

        read_rate = args.candles / read_s
        naive_rate = n / naive_read_s
        rows = [
            ("ingest CSV -> bucketed store", args.candles / ingest_s, ingest_s, ">= 200,000"),
            ("re-ingest same files (--force)", args.candles / reingest_s, reingest_s, ""),
            ("read year -> numpy (bucketed)", read_rate, read_s, ">= 1,000,000"),
            ("fingerprint of the year", args.candles / fingerprint_s, fingerprint_s, ""),
            ("naive insert (doc per candle)", n / naive_insert_s, naive_insert_s, ""),
            ("naive read -> numpy", naive_rate, naive_read_s, ""),
        ]
        print(f"{'measure':34} {'candles/s':>14} {'seconds':>9}  target")
        for name, rate, seconds, target in rows:
            print(f"{name:34} {rate:14,.0f} {seconds:9.3f}  {target}")
        print(f"read speed-up over naive: {read_rate / naive_rate:.1f}x (target >= 20x)")
    finally:
        client.drop_database(db.name)
        client.close()
        if server is not None:
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
