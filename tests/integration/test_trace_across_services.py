"""One backtest is one trace: gateway -> scheduler -> runner -> results, context carried in NATS headers.

All four services run in this process from their composition roots, each with its own tracer provider
(its own `service.name`) exporting to one in-memory exporter, over a private NATS JetStream server,
the MongoDB-compatible server and the real Docker sandbox. The backtest goes in through the gateway's
HTTP API (ASGI, in process) and the test waits until the results writer stored SUCCESS.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from backtest_cli.token import create_token
from backtest_core.contracts import new_id
from backtest_core.contracts.records import BACKTESTS_COLLECTION
from backtest_core.io.data_files import read_candle_file
from backtest_gateway.main import create_app as create_gateway
from backtest_gateway.settings import GatewaySettings
from backtest_marketdata import MongoCandleStore, MongoSymbolStore
from backtest_observability import configure_telemetry
from backtest_results.main import create_app as create_results
from backtest_results.settings import Settings as ResultsSettings
from backtest_runner.main import RunnerApp
from backtest_runner.settings import RunnerSettings
from backtest_scheduler.main import create_app as create_scheduler
from backtest_scheduler.settings import Settings as SchedulerSettings
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pymongo.database import Database

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data" / "bitfinex" / "spot" / "monthly" / "klines" / "ETHUSD" / "1d"
JWT_SECRET = "trace-test-secret-0123456789abcdef-0123"
SERVICES = ("gateway", "scheduler", "runner", "results")
FINISH_TIMEOUT_S = 120.0
CONFIG = {
    "strategy": "sma_cross",
    "params": {"fast": 5, "slow": 20},
    "symbols": ["ETHUSD"],
    "interval": "1d",
    "start": "2019-01-01T00:00:00Z",
    "end": "2020-01-01T00:00:00Z",
}


class NoExport:
    otlp_endpoint: str | None = None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.trace_id


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    """Names of the span's ancestors, nearest first ("service:name")."""
    names = []
    while span.parent is not None:
        span = by_id[span.parent.span_id]
        names.append(f"{span.resource.attributes['service.name']}:{span.name}")
    return names


async def wait_for_success(db: Database[Any], exporter: InMemorySpanExporter, task_id: str) -> None:
    """Wait until MongoDB holds SUCCESS and its "persistence" span has ended."""
    deadline = asyncio.get_running_loop().time() + FINISH_TIMEOUT_S
    while asyncio.get_running_loop().time() < deadline:
        doc = await asyncio.to_thread(db[BACKTESTS_COLLECTION].find_one, {"_id": task_id}, {"state": 1})
        stored = [
            s
            for s in exporter.get_finished_spans()
            if s.name == "persistence" and (s.attributes or {}).get("backtest.state") == "SUCCESS"
        ]
        if doc is not None and doc["state"] in ("SUCCESS", "FAILURE") and stored:
            assert doc["state"] == "SUCCESS"
            return
        await asyncio.sleep(0.2)
    pytest.fail(f"task {task_id} did not reach SUCCESS with a persistence span in {FINISH_TIMEOUT_S} s")


async def test_one_backtest_is_one_trace_across_gateway_scheduler_runner_and_results(
    nats_server_factory: Callable[[], Any],
    mongo_uri: str,
    mongo_readonly_uri: str,
    mongo_db: Database[Any],
    sandbox_image: str,
    tmp_path: Path,
) -> None:
    store = MongoCandleStore(mongo_db)
    store.ensure_indexes()
    for month in range(1, 13):
        store.write(read_candle_file(DATA / f"ETHUSD-1d-2019-{month:02d}.csv"))
    MongoSymbolStore(mongo_db).set_coverage(store.coverage("ETHUSD", "1d"))  # the catalog, as ingest keeps it
    server = nats_server_factory()
    exporter = InMemorySpanExporter()
    providers: dict[str, TracerProvider] = {
        name: configure_telemetry(f"backtest-{name}", NoExport(), exporter=exporter) for name in SERVICES
    }
    db = {"mongodb_uri": mongo_uri, "mongodb_database": mongo_db.name, "nats_url": server.url}
    scheduler = create_scheduler(SchedulerSettings(**db), tracer_provider=providers["scheduler"])
    results = create_results(ResultsSettings(**db), tracer_provider=providers["results"])
    runner = RunnerApp(
        RunnerSettings(
            **(db | {"mongodb_uri": mongo_readonly_uri}),
            sandbox_image=sandbox_image,
            runner_id=f"trace-{new_id()[:12]}",
            work_dir=tmp_path / "runner",
            slots=1,
        ),
        tracer_provider=providers["runner"],
    )
    gateway = create_gateway(
        GatewaySettings(**db, jwt_secret=JWT_SECRET), tracer_provider=providers["gateway"]
    )
    token = create_token("alice", "researcher", JWT_SECRET.encode(), ttl_s=600)
    await scheduler.start()
    await results.start()
    fetching = asyncio.create_task((await runner.start()).run())
    try:
        async with (
            gateway.router.lifespan_context(gateway),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gateway") as http,
        ):
            response = await http.post(
                "/backtest/submit", json=CONFIG, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 202, response.text
            task_id = response.json()["task_id"]
            await wait_for_success(mongo_db, exporter, task_id)
    finally:
        await runner.stop()
        await fetching
        await results.stop()
        await scheduler.stop()

    spans = exporter.get_finished_spans()
    by_id = {span_id(s): s for s in spans}
    by_name: dict[str, list[ReadableSpan]] = {}
    for s in spans:
        by_name.setdefault(s.name, []).append(s)
    [root] = [s for s in spans if s.parent is None]
    service = {s.name: s.resource.attributes["service.name"] for s in spans}

    # One trace: every span of every service, rooted at the gateway's HTTP request.
    assert root.name == "POST /backtest/submit" and service[root.name] == "backtest-gateway"
    assert (root.attributes or {})["http.response.status_code"] == 202
    assert {trace_id(s) for s in spans} == {trace_id(root)}
    assert {s.resource.attributes["service.name"] for s in spans} == {f"backtest-{n}" for n in SERVICES}
    assert all(s.parent is None or s.parent.span_id in by_id for s in spans), "a parent span is missing"

    # The named spans, each once for this one-symbol backtest, in their services.
    for name, owner in [
        ("queueing", "backtest-scheduler"),
        ("run job", "backtest-runner"),
        ("data load", "backtest-runner"),
        ("container run", "backtest-runner"),
    ]:
        assert len(by_name[name]) == 1, name
        assert service[name] == owner
    [queueing], [job], [load], [container] = (
        by_name[n] for n in ("queueing", "run job", "data load", "container run")
    )
    assert (queueing.attributes or {})["backtest.task_id"] == task_id
    assert (load.attributes or {})["backtest.symbol"] == "ETHUSD" and (load.attributes or {})[
        "backtest.bars"
    ] > 300
    assert (container.attributes or {})["backtest.outcome"] == "BatchEnded"  # its one job ended

    # Parent/child: gateway -> scheduler (queueing) -> runner (run job -> data load, container run).
    assert load.parent is not None and load.parent.span_id == span_id(job)
    assert container.parent is not None and container.parent.span_id == span_id(job)
    http_span = "backtest-gateway:POST /backtest/submit"
    consume_submit = "backtest-scheduler:backtest.command.submit process"
    assert ancestors(queueing, by_id) == [consume_submit, http_span]
    job_chain = [
        "backtest-scheduler:backtest.job.run create",
        "backtest-scheduler:queueing",
        consume_submit,
        http_span,
    ]
    assert ancestors(job, by_id) == job_chain

    # Results: every state change is persisted inside the trace; SUCCESS follows the runner's report.
    states = [(s.attributes or {})["backtest.state"] for s in by_name["persistence"]]
    assert {"PENDING", "STARTED", "SUCCESS"} <= set(states) and states.count("SUCCESS") == 1
    assert service["persistence"] == "backtest-results"
    [success] = [s for s in by_name["persistence"] if (s.attributes or {})["backtest.state"] == "SUCCESS"]
    assert ancestors(success, by_id) == [
        f"backtest-results:backtest.event.{task_id} process",
        f"backtest-scheduler:backtest.event.{task_id} create",
        f"backtest-scheduler:backtest.run.{task_id} process",
        "backtest-runner:run job",
        *job_chain,
    ]
