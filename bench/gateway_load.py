"""Another user's `GET /backtest/list?limit=1` latency while a heavy tenant fetches and streams a huge result.

    python bench/gateway_load.py [--requests 300] [--trades 200000]

Starts its own nats-server (deploy/nats/nats.conf) and the MongoDB-compatible server (SecantusDB), stores
one SUCCESS task of user `heavy` holding a result of --trades trades (packed as the results writer stores
it; checked to fit MAX_RESULT_BYTES) and its two events (PENDING, SUCCESS with the whole result) in
BACKTEST_EVENTS, and runs the gateway as its own process (`python -m backtest_gateway`, read limits
raised so the heavy tenant is never throttled: the worst case for the event loop).

  baseline  - `other` sends --requests sequential GET /backtest/list?limit=1; p50/p99 in ms;
  loaded    - the same while 4 threads fetch the whole result again and again (every page, as
              `backtest results --json` does) and 4 threads stream the task (WS, SUCCESS frame),
              in a process of their own (as another user's machine: their JSON parsing must not
              hold the measuring client's GIL).
Target (issue 12, item 2): loaded p99 < baseline p99 + 100 ms. Everything it started is stopped.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from platform_bench import infra

SECRET = "bench-secret-0123456789abcdef-0123456789"
TASK = "ee" * 16


def token(user: str) -> str:
    """A researcher token of `user` for the bench's gateway."""
    from backtest_cli.token import create_token

    return create_token(user, "researcher", SECRET.encode(), ttl_s=3600)


def store_heavy_task(mongo_uri: str, database: str, nats_url: str, trades: int) -> int:
    """Store the heavy task and its events; return the packed result's size in bytes."""
    import asyncio

    import nats
    from backtest_core.contracts import (
        MAX_RESULT_BYTES,
        BacktestAccepted,
        BacktestSucceeded,
        Stream,
        Subject,
    )
    from backtest_core.contracts.records import (
        BACKTESTS_COLLECTION,
        USER_CREATED_INDEX,
        state_fields,
        submitted_document,
    )
    from backtest_core.model.config import BacktestConfig
    from backtest_core.model.trade_log import PACKED
    from backtest_messaging import declare_streams, event_headers
    from pymongo import MongoClient

    config = BacktestConfig(strategy="sma_cross", symbols=["BTCUSD", "ETHUSD"])
    result = infra.make_large_result(config, trades=trades)
    success = BacktestSucceeded(task_id=TASK, user_id="heavy", seq=2, result=result)
    payload = success.model_dump_json(context=PACKED).encode()
    if len(payload) > MAX_RESULT_BYTES:
        raise SystemExit(f"--trades {trades}: {len(payload)} bytes, over MAX_RESULT_BYTES {MAX_RESULT_BYTES}")
    now = datetime.now(UTC)
    heavy = submitted_document(TASK, "heavy", config, created_at=now)
    heavy.update(state_fields(success))  # as the results writer stores it
    others = [submitted_document(f"{i:032x}", "other", config, created_at=now) for i in range(1, 6)]
    with MongoClient(mongo_uri) as client:
        backtests = client[database][BACKTESTS_COLLECTION]
        backtests.insert_one(heavy)
        backtests.insert_many(others)
        backtests.create_index(list(USER_CREATED_INDEX.keys), name=USER_CREATED_INDEX.name)

    async def publish() -> None:
        connection = await nats.connect(nats_url)
        js = connection.jetstream()
        await declare_streams(js, (Stream.EVENTS,))
        accepted = BacktestAccepted(task_id=TASK, user_id="heavy", seq=1, config=config, cache_key="k")
        for event, body in ((accepted, accepted.model_dump_json().encode()), (success, payload)):
            # published as the scheduler publishes events (backtest_messaging.event_headers)
            subject, headers = Subject.event(TASK), event_headers(event)
            await js.publish(subject, body, stream=Stream.EVENTS.value, headers=headers, timeout=30)
        await connection.drain()

    asyncio.run(publish())
    return len(payload)


def start_gateway(
    work: Path, nats_url: str, mongo_uri: str, database: str
) -> tuple[subprocess.Popen[bytes], str]:
    """Run `python -m backtest_gateway` on a free port; return the process and its base URL."""
    port = infra.free_port()
    env = {
        **os.environ,
        "GATEWAY_JWT_SECRET": SECRET,
        "GATEWAY_NATS_URL": nats_url,
        "GATEWAY_MONGODB_URI": mongo_uri,
        "GATEWAY_MONGODB_DATABASE": database,
        "GATEWAY_PORT": str(port),
        "GATEWAY_READ_RATE_PER_S": "100000",
        "GATEWAY_READ_BURST": "100000",
    }
    log = (work / "gateway.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "backtest_gateway"], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):
                return process, url
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"the gateway did not answer in 60 s; see {work / 'gateway.log'}")


def list_latencies(url: str, requests: int) -> list[float]:
    """Send `requests` sequential GET /backtest/list?limit=1 as `other`; return each latency, ms."""
    import httpx

    out = []
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token('other')}"}, timeout=60
    ) as http:
        for _ in range(requests):
            started = time.perf_counter()
            response = http.get("/backtest/list", params={"limit": 1})
            out.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200 or response.json()["total"] != 5:
                raise SystemExit(f"list answered {response.status_code}: {response.text[:200]}")
    return out


def heavy_load(
    url: str, stop: threading.Event, counts: dict[str, int], fetchers: int, streams: int
) -> list[threading.Thread]:
    """Start `fetchers` threads fetching every page of the result and `streams` streaming it, until `stop`."""
    from backtest_cli.remote import GatewayClient

    def fetch() -> None:
        client = GatewayClient(url, token("heavy"), timeout_s=120)
        while not stop.is_set():
            body = client.results(TASK)
            counts["fetched_trades"] += len(body["result"]["trades"])
            counts["fetches"] += 1
        client.close()

    def stream() -> None:
        client = GatewayClient(url, token("heavy"), timeout_s=120)
        while not stop.is_set():
            for frame in client.events(TASK):
                counts["frames"] += 1
                if frame["state"] == "SUCCESS":
                    counts["success_frames"] += 1

    threads = [threading.Thread(target=fetch, daemon=True) for _ in range(fetchers)]
    threads += [threading.Thread(target=stream, daemon=True) for _ in range(streams)]
    for thread in threads:
        thread.start()
    return threads


def heavy_tenant(url: str, stop: Any, out: Any, fetchers: int, streams: int) -> None:
    """The heavy tenant's process: run `heavy_load` until `stop` is set, then put its counts on `out`."""
    counts = {"fetches": 0, "fetched_trades": 0, "frames": 0, "success_frames": 0}
    local_stop = threading.Event()
    threads = heavy_load(url, local_stop, counts, fetchers, streams)
    stop.wait()
    local_stop.set()
    for thread in threads:
        thread.join(timeout=120)
    out.put(counts)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values`, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def main() -> None:
    """Run the two phases and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="list requests per phase")
    parser.add_argument("--trades", type=int, default=200_000, help="trades of the heavy result")
    parser.add_argument("--fetchers", type=int, default=4, help="threads fetching the whole result")
    parser.add_argument("--streams", type=int, default=4, help="threads streaming the task")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gateway-load-") as tmp:
        work = Path(tmp)
        (work / "nats").mkdir()
        (work / "mongo").mkdir()
        nats_server = infra.NatsServer(work / "nats")
        mongo = infra.MongoEmulator(work / "mongo", auth=False)
        nats_server.start()
        mongo.start()
        gateway = None
        try:
            database = "gateway_load"
            size = store_heavy_task(mongo.uri, database, nats_server.url, args.trades)
            gateway, url = start_gateway(work, nats_server.url, mongo.uri, database)
            list_latencies(url, 20)  # warm-up
            baseline = list_latencies(url, args.requests)
            context = multiprocessing.get_context("fork")  # no thread of this process is running yet
            stop, out = context.Event(), context.Queue()
            tenant = context.Process(
                target=heavy_tenant, args=(url, stop, out, args.fetchers, args.streams), daemon=True
            )
            tenant.start()
            time.sleep(2.0)  # the heavy tenant is in full swing
            loaded = list_latencies(url, args.requests)
            stop.set()
            counts = out.get(timeout=180)
            tenant.join(timeout=30)
        finally:
            if gateway is not None:
                gateway.terminate()
                gateway.wait(timeout=30)
            mongo.stop()
            nats_server.stop()
    print(f"heavy result: {args.trades} trades, {size / 2**20:.1f} MiB packed event; gateway: 1 process")
    fetched, frames = counts["fetches"], counts["success_frames"]
    print(f"heavy tenant during 'loaded': {fetched} whole-result fetches, {frames} SUCCESS frames streamed")
    print("| phase | requests | p50 ms | p99 ms | max ms |")
    print("| --- | --- | --- | --- | --- |")
    for name, values in (
        ("baseline", baseline),
        (f"loaded ({args.fetchers} fetch + {args.streams} stream)", loaded),
    ):
        row = (percentile(values, 0.5), percentile(values, 0.99), max(values))
        print(f"| {name} | {len(values)} | {row[0]:.1f} | {row[1]:.1f} | {row[2]:.1f} |")
    delta = percentile(loaded, 0.99) - percentile(baseline, 0.99)
    print(f"p99 loaded - baseline: {delta:.1f} ms (target < 100 ms): {'met' if delta < 100 else 'NOT met'}")


if __name__ == "__main__":
    main()
