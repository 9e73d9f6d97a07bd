"""The runner process (create_app) on a private NATS JetStream, the MongoDB-compatible server and Docker.

The test plays the scheduler: it queues RunBacktestJob on BACKTEST_JOBS, reads the runner's reports from
BACKTEST_RUNS and broadcasts CancelRun. Candles are stored with MongoCandleStore and read by the runner
through the read-only user, secondary preferred.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import nats
import pytest
from backtest_core.contracts import (
    CancelRun,
    FailureReason,
    RunBacktestJob,
    RunFailed,
    RunProgressed,
    RunReport,
    RunSucceeded,
    Stream,
    Subject,
    new_id,
)
from backtest_core.engine.run import run_backtest
from backtest_core.model.candles import Candles
from backtest_core.model.config import BacktestConfig, SourceStrategy
from backtest_marketdata import MongoCandleStore
from backtest_runner.main import RunnerApp, create_app
from backtest_runner.sandbox.docker_sandbox import LABEL_ROLE, LABEL_RUNNER, ROLE_SANDBOX
from backtest_runner.settings import RunnerSettings
from backtest_testinfra import shipped_candles
from nats.aio.client import Client
from pydantic import TypeAdapter
from pymongo.database import Database

pytestmark = pytest.mark.integration

REPORTS = TypeAdapter[RunReport](RunReport)
SLEEPS = (
    "import time\nfrom backtest_core.strategy import BaseStrategy\n\n\n"
    "class Sleeper(BaseStrategy):\n    def decide(self, df, interval, **p):\n        time.sleep(3600)\n"
)
WAIT_S = 60.0


@pytest.fixture
def runner_id(docker_client: docker.DockerClient) -> Iterator[str]:
    """A unique runner id; afterwards assert that no sandbox container of this runner is left."""
    rid = f"test-js-{os.getpid()}-{os.urandom(4).hex()}"
    yield rid
    label = [f"{LABEL_ROLE}={ROLE_SANDBOX}", f"{LABEL_RUNNER}={rid}"]
    left = docker_client.containers.list(all=True, filters={"label": label})
    for container in left:
        container.remove(force=True)
    assert [c.name for c in left] == []


@pytest.fixture
def stored(mongo_db: Database[Any]) -> dict[str, Candles]:
    """Store real BTCUSD and ETHUSD daily candles in a fresh database."""
    store = MongoCandleStore(mongo_db)
    candles = {s: shipped_candles(s) for s in ("BTCUSD", "ETHUSD")}
    for bars in candles.values():
        store.write(bars)
    return candles


@pytest.fixture
def settings(
    nats_server_factory: Callable[[], Any],
    mongo_readonly_uri: str,
    mongo_db: Database[Any],
    sandbox_image: str,
    runner_id: str,
    tmp_path: Path,
) -> RunnerSettings:
    server = nats_server_factory()
    return RunnerSettings(
        nats_url=server.url,
        mongodb_uri=mongo_readonly_uri,
        mongodb_database=mongo_db.name,
        runner_id=runner_id,
        slots=2,
        sandbox_image=sandbox_image,
        work_dir=tmp_path / "jobs",
        memory_mb=384,
        wall_clock_s=60.0,
        progress_interval_s=0.0,
        heartbeat_interval_s=1.0,
        shutdown_grace_s=5.0,
    )


@pytest.fixture
async def runner(settings: RunnerSettings, stored: dict[str, Candles]) -> AsyncIterator[RunnerApp]:
    app = create_app(settings)
    service = await app.start()
    loop = asyncio.create_task(service.run())
    yield app
    await app.stop()
    await loop


@pytest.fixture
async def nc(settings: RunnerSettings) -> AsyncIterator[Client]:
    client = await nats.connect(settings.nats_url)
    yield client
    await client.close()


def _job(strategy: str | SourceStrategy, **params: int) -> RunBacktestJob:
    config = BacktestConfig(
        strategy=strategy,
        params=params,
        symbols=["BTCUSD", "ETHUSD"],
        start=datetime(2018, 1, 1, tzinfo=UTC),
        end=datetime(2019, 7, 1, tzinfo=UTC),
    )
    return RunBacktestJob(task_id=new_id(), attempt=1, user_id="u1", config=config, cache_key="c" * 64)


async def _queue(nc: Client, job: RunBacktestJob) -> None:
    await nc.jetstream().publish(
        Subject.JOB_RUN, job.model_dump_json().encode(), headers={"Nats-Msg-Id": job.message_id}
    )


async def _reports(nc: Client, task_id: str, until: Callable[[list[RunReport]], bool]) -> list[RunReport]:
    """Read the task's reports from BACKTEST_RUNS from the start until `until(reports)` holds."""
    sub = await nc.jetstream().subscribe(Subject.run(task_id), stream=Stream.RUNS, ordered_consumer=True)
    reports: list[RunReport] = []
    try:
        while not until(reports):
            msg = await sub.next_msg(timeout=WAIT_S)
            reports.append(REPORTS.validate_json(msg.data))
    finally:
        await sub.unsubscribe()
    return reports


def _terminal(reports: list[RunReport]) -> bool:
    return bool(reports) and reports[-1].kind in ("succeeded", "failed")


async def _jobs_left(nc: Client) -> int:
    """Return how many jobs are still in the work queue (acked jobs are deleted)."""
    for _ in range(int(WAIT_S * 10)):
        info = await nc.jetstream().stream_info(Stream.JOBS)
        if info.state.messages == 0:
            return 0
        await asyncio.sleep(0.1)
    return int(info.state.messages)


async def test_a_queued_job_reports_in_order_with_the_in_process_result_and_is_acked(
    runner: RunnerApp, nc: Client, stored: dict[str, Candles]
) -> None:
    job = _job("sma_cross", fast=10, slow=30)

    await _queue(nc, job)
    reports = await _reports(nc, job.task_id, _terminal)

    kinds = [r.kind for r in reports]
    assert kinds[0] == "started" and kinds[-1] == "succeeded" and kinds.count("progressed") >= 2
    assert set(kinds[1:-1]) == {"progressed"}
    fractions = [r.fraction for r in reports if isinstance(r, RunProgressed)]
    assert fractions == sorted(fractions)
    succeeded = reports[-1]
    assert isinstance(succeeded, RunSucceeded)
    expected = run_backtest(job.config, stored, equity_points_max=5000)
    assert succeeded.result.metrics == expected.metrics
    assert succeeded.result == expected
    assert succeeded.duration_ms > 0
    assert await _jobs_left(nc) == 0


async def test_two_jobs_run_side_by_side_and_both_succeed(runner: RunnerApp, nc: Client) -> None:
    first, second = _job("sma_cross", fast=5, slow=20), _job("sma_cross", fast=10, slow=40)

    await _queue(nc, first)
    await _queue(nc, second)
    results = await asyncio.gather(
        _reports(nc, first.task_id, _terminal), _reports(nc, second.task_id, _terminal)
    )

    assert [r[-1].kind for r in results] == ["succeeded", "succeeded"]
    assert await _jobs_left(nc) == 0


async def test_a_cancel_broadcast_kills_the_running_container_and_acks_the_job(
    runner: RunnerApp, nc: Client, docker_client: docker.DockerClient, runner_id: str
) -> None:
    job = _job(SourceStrategy(source=SLEEPS))
    await _queue(nc, job)
    await _reports(nc, job.task_id, lambda rs: any(isinstance(r, RunProgressed) for r in rs))
    label = {"label": [f"{LABEL_RUNNER}={runner_id}"]}
    assert len(docker_client.containers.list(filters=label)) == 1

    await nc.publish(Subject.CANCEL_RUN, CancelRun(task_id=job.task_id).model_dump_json().encode())

    assert await _jobs_left(nc) == 0
    assert docker_client.containers.list(all=True, filters=label) == []
    reports = await _reports(nc, job.task_id, lambda rs: len(rs) >= 2)
    assert {r.kind for r in reports} == {"started", "progressed"}


async def test_a_missing_sandbox_image_is_reported_as_infrastructure_and_acked(
    settings: RunnerSettings, stored: dict[str, Candles], nc: Client
) -> None:
    app = create_app(settings.model_copy(update={"sandbox_image": "backtest-sandbox:no-such-tag"}))
    service = await app.start()
    loop = asyncio.create_task(service.run())
    try:
        job = _job("sma_cross")
        await _queue(nc, job)
        reports = await _reports(nc, job.task_id, _terminal)
    finally:
        await app.stop()
        await loop

    failed = reports[-1]
    assert isinstance(failed, RunFailed)
    assert failed.failure.reason is FailureReason.INFRASTRUCTURE
    assert "'backtest-sandbox:no-such-tag' is not on this Docker engine" in failed.failure.message
    assert await _jobs_left(nc) == 0
