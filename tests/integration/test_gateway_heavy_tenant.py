"""One tenant fetching and streaming a huge result on real NATS and the MongoDB-compatible server (issue 12).

The gateway is served by uvicorn in a thread of this process, so the test can count how many times a
packed trade log is decoded while 4 clients fetch every page and 4 clients stream the task.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import nats
import pytest
import uvicorn
from backtest_cli.remote import GatewayClient
from backtest_cli.token import create_token
from backtest_core.contracts import BacktestAccepted, BacktestSucceeded, Stream, Subject, new_id
from backtest_core.contracts.records import BACKTESTS_COLLECTION, state_fields, submitted_document
from backtest_core.model import trade_log
from backtest_core.model.config import BacktestConfig
from backtest_core.model.trade_log import PACKED
from backtest_gateway.main import create_app
from backtest_gateway.settings import GatewaySettings
from backtest_messaging import declare_streams
from backtest_testinfra import free_port, make_large_result
from pymongo import MongoClient

SECRET = "heavy-tenant-secret-0123456789abcdef-01"
TASK = "ee" * 16
TRADES = 50_000
HEAVY_CLIENTS = 4  # fetchers, and as many streams (the per-user cap)
CONFIG = BacktestConfig(strategy="sma_cross", symbols=["BTCUSD", "ETHUSD"])


def _store_heavy_task(settings: GatewaySettings, nats_url: str) -> None:
    """Store `heavy`'s SUCCESS task (packed, as the results writer does), 3 tasks of `other`, and 2 events."""
    result = make_large_result(CONFIG, trades=TRADES)
    now = datetime.now(UTC)
    success = BacktestSucceeded(task_id=TASK, user_id="heavy", seq=2, result=result)
    heavy = submitted_document(TASK, "heavy", CONFIG, created_at=now)
    heavy.update(state_fields(success))
    others = [submitted_document(new_id(), "other", CONFIG, created_at=now) for _ in range(3)]
    with MongoClient(settings.mongodb_uri) as client:
        client[settings.mongodb_database][BACKTESTS_COLLECTION].insert_many([heavy, *others])

    async def publish() -> None:
        connection = await nats.connect(nats_url)
        js = connection.jetstream()
        await declare_streams(js, (Stream.EVENTS,))
        accepted = BacktestAccepted(task_id=TASK, user_id="heavy", seq=1, config=CONFIG, cache_key="k")
        for event in (accepted, success):
            data = event.model_dump_json(context=PACKED).encode()
            await js.publish(Subject.event(TASK), data, stream=Stream.EVENTS.value, timeout=30)
        await connection.drain()

    asyncio.run(publish())


@pytest.fixture
def served_gateway(nats_url: str, mongo_uri: str) -> Iterator[str]:
    """Serve the gateway (read limits raised: the heavy tenant is never throttled) with the heavy task."""
    database = f"heavy_{new_id()[:12]}"
    settings = GatewaySettings(
        jwt_secret=SECRET, nats_url=nats_url, mongodb_uri=mongo_uri, mongodb_database=database,
        read_rate_per_s=100_000, read_burst=100_000,
    )  # fmt: skip
    _store_heavy_task(settings, nats_url)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        with MongoClient(mongo_uri) as client:
            client.drop_database(settings.mongodb_database)


def _client(url: str, user: str) -> GatewayClient:
    return GatewayClient(url, create_token(user, "researcher", SECRET.encode(), ttl_s=600), timeout_s=120)


def _run_all(jobs: list[Callable[[], None]]) -> None:
    errors: list[BaseException] = []

    def guarded(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as error:  # reported by the test below
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors


def test_four_fetches_and_four_streams_of_a_huge_result_decode_it_once_while_another_user_lists(
    served_gateway: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    unpacked: list[int] = []
    real_unpack = trade_log.unpack

    def counting_unpack(packed: str) -> Any:
        unpacked.append(len(packed))
        return real_unpack(packed)

    monkeypatch.setattr(trade_log, "unpack", counting_unpack)
    heavy_done = threading.Event()
    fetched: list[int] = []
    success_frames: list[dict[str, Any]] = []
    lists_during_heavy: list[int] = []

    def fetch() -> None:
        fetched.append(len(_client(served_gateway, "heavy").results(TASK)["result"]["trades"]))

    def stream() -> None:
        frames = list(_client(served_gateway, "heavy").events(TASK))
        success_frames.extend(frame for frame in frames if frame["state"] == "SUCCESS")

    def heavy() -> None:
        try:
            _run_all([fetch] * HEAVY_CLIENTS + [stream] * HEAVY_CLIENTS)
        finally:
            heavy_done.set()

    def other_lists() -> None:
        client = _client(served_gateway, "other")
        while not heavy_done.is_set():
            lists_during_heavy.append(client.list_backtests(limit=1, offset=0)["total"])

    _run_all([heavy, other_lists])

    assert fetched == [TRADES] * HEAVY_CLIENTS
    assert len(success_frames) == HEAVY_CLIENTS
    for frame in success_frames:
        assert frame["page"]["trades_total"] == TRADES
        assert frame["page"]["trades_next_offset"] == 1_000
        assert len(frame["result"]["trades"]) == 1_000
    # One decode of the stored result serves every page and every SUCCESS frame (before: one per stream).
    assert len(unpacked) == 1
    assert len(lists_during_heavy) >= 5
    assert set(lists_during_heavy) == {3}
