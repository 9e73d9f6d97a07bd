"""The platform as separate processes that a test may kill, stop and restart one by one.

Used by tests/reliability (fault and load tests) and by bench/platform.py. Every stack gets its own
database (the repo's real BTCUSD daily candles loaded into it) and its own runner ids, so what a
stack leaves in JetStream, MongoDB or Docker is told apart from everything else on the machine.
No pytest here: the fixtures in conftest.py wrap it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import httpx
import nats
from backtest_core.contracts import (
    RESULTS_EVENTS_CONSUMER,
    RUNNER_JOBS_CONSUMER,
    SCHEDULER_COMMANDS_CONSUMER,
    SWEEPER_COMMANDS_CONSUMER,
    SWEEPER_EVENTS_CONSUMER,
    TERMINAL_STATES,
    DeadLetteredJob,
    Stream,
    Subject,
    SubmitBacktest,
    new_id,
)
from backtest_core.contracts.records import BACKTESTS_COLLECTION
from backtest_core.model.config import BacktestConfig
from backtest_marketdata.ingest import Ingestor, discover
from backtest_messaging.streams import server_urls
from backtest_testinfra import free_port
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pymongo import MongoClient

REPO = Path(__file__).resolve().parents[2]
CANDLES = REPO / "data" / "binance" / "spot" / "monthly" / "klines" / "BTCUSD" / "1d"
SYMBOL = "BTCUSD"
JWT_SECRET = "reliability-secret-0123456789abcdef-0123"
TERMINAL = frozenset(state.value for state in TERMINAL_STATES)
READY_TIMEOUT_S = 60.0
LABEL_RUNNER = "io.backtest.runner_id"  # = backtest_runner.sandbox.docker_sandbox.LABEL_RUNNER
LABEL_INSTANCE = "io.backtest.instance_id"  # = backtest_runner.sandbox.docker_sandbox.LABEL_INSTANCE
RUNNER_HEARTBEAT_TTL_S = 3.0  # a killed runner's containers are removed by another runner this soon


class StackError(RuntimeError):
    """The stack did not reach the state a caller waited for; the message carries the service logs."""


def small_config(index: int, *, months: int = 12) -> dict[str, Any]:
    """Return a small, distinct backtest: sma_cross on BTCUSD daily, params varied by `index` (0..599).

    `index` maps to fast = 3 + index % 20, slow = 25 + index // 20 (so no two indexes share a cache key).
    """
    fast, slow = 3 + index % 20, 25 + index // 20
    end_year, end_month = 2019 + months // 12, 1 + months % 12
    return {
        "strategy": "sma_cross",
        "params": {"fast": fast, "slow": slow},
        "symbols": [SYMBOL],
        "interval": "1d",
        "start": "2019-01-01T00:00:00Z",
        "end": f"{end_year}-{end_month:02d}-01T00:00:00Z",
    }


@dataclass(frozen=True)
class SandboxContainer:
    """A sandbox container as the Docker engine lists it."""

    id: str
    name: str
    labels: Mapping[str, str]


@dataclass
class Service:
    """One service process (`python -m backtest_<kind>`) with its own environment and log file."""

    name: str
    kind: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """Return True while the process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the process (its log is appended to)."""
        if self.running:
            raise StackError(f"{self.name} is running already")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"backtest_{self.kind}"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def stop(self, grace_s: float = 30.0) -> None:
        """SIGTERM, wait up to `grace_s` seconds, then SIGKILL."""
        if not self.running or self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL at once, as a crash would."""
        if self.running and self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)

    def tail(self, lines: int = 25) -> str:
        """Return the last lines of the log."""
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Stack:
    """Gateway and sweeper (optional), scheduler, results and N runners on one NATS and one MongoDB URI."""

    work: Path
    nats_url: str
    mongo_uri: str
    mongo_readonly_uri: str
    sandbox_image: str
    runners: int = 2
    slots: int = 1
    schedulers: int = 1  # named scheduler, scheduler-1, ...: they share the consumers and the KV state
    gateway: bool = False
    gateways: int = 1  # with gateway: how many (gateway, gateway-1, ...), each on its own port
    sweeper: bool = False  # the sweeper service (sweeps are submitted through the gateway: needs gateway)
    sweepers: int = 1  # with sweeper: how many (sweeper, sweeper-1, ...): they share consumers and locks
    overrides: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    database: str = field(default_factory=lambda: f"rel_{new_id()[:12]}")
    services: dict[str, Service] = field(default_factory=dict)
    gateway_url: str = ""  # the first gateway's
    gateway_urls: list[str] = field(default_factory=list)
    nats_server: Any = None  # the private NatsServer (tests restart it), if the fixture started one
    mongo_server: Any = None  # a private MongoEmulator (tests restart it), if the fixture started one
    stream_replicas: int = 1  # 3 on a three-node cluster (nats_url then lists its nodes, comma-separated)

    # --- lifecycle ------------------------------------------------------------------------------

    def runner_ids(self) -> list[str]:
        """Return the runner ids of this stack (stable across restarts of a runner)."""
        return [f"{self.database}-runner-{index}" for index in range(self.runners)]

    def load_candles(self) -> int:
        """Load the shipped BTCUSD daily candles into this stack's database; return the bar count."""
        with MongoClient(self.mongo_uri, tz_aware=True) as client:
            ingestor = Ingestor(client[self.database])
            ingestor.ensure_indexes()
            summary = ingestor.ingest(discover([str(CANDLES)]))
        if summary.rejected:
            raise StackError(f"the shipped candles did not load: {summary.rejected}")
        return summary.candles_added

    def _env(self, prefix: str, mongo_uri: str) -> dict[str, str]:
        return {
            f"{prefix}_NATS_URL": self.nats_url,
            f"{prefix}_MONGODB_URI": mongo_uri,
            f"{prefix}_MONGODB_DATABASE": self.database,
            f"{prefix}_STREAM_REPLICAS": str(self.stream_replicas),
        }

    def _add(self, name: str, kind: str, env: dict[str, str]) -> None:
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GATEWAY_", "SCHEDULER_", "RUNNER_", "SWEEPER_"))
        }
        full = {**base, **env, **self.overrides.get(name, {}), **self.overrides.get(kind, {})}
        self.services[name] = Service(name, kind, full, self.work / f"{name}.log")

    def build(self) -> None:
        """Describe every service process (nothing starts)."""
        self.work.mkdir(parents=True, exist_ok=True)
        self._add("results", "results", self._env("RESULTS", self.mongo_uri))
        slots = str(self.runners * self.slots)  # admission: every runner slot, any user (override per test)
        limits = {"SCHEDULER_MAX_IN_FLIGHT": slots, "SCHEDULER_PER_USER_IN_FLIGHT": slots}
        for index in range(self.schedulers):
            name = "scheduler" if index == 0 else f"scheduler-{index}"
            self._add(name, "scheduler", self._env("SCHEDULER", self.mongo_uri) | limits)
        for index, runner_id in enumerate(self.runner_ids()):
            env = self._env("RUNNER", self.mongo_readonly_uri) | {
                "RUNNER_SANDBOX_IMAGE": self.sandbox_image,
                "RUNNER_RUNNER_ID": runner_id,
                "RUNNER_INSTANCE_ID": self.database,  # a platform instance per stack
                "RUNNER_HEARTBEAT_TTL_S": str(RUNNER_HEARTBEAT_TTL_S),
                "RUNNER_WORK_DIR": str(self.work / f"runner-{index}"),
                "RUNNER_SLOTS": str(self.slots),
            }
            self._add(f"runner-{index}", "runner", env)
        for index in range(self.gateways if self.gateway else 0):
            port = free_port()
            self.gateway_urls.append(f"http://127.0.0.1:{port}")
            env = self._env("GATEWAY", self.mongo_uri) | {
                "GATEWAY_JWT_SECRET": JWT_SECRET,
                "GATEWAY_PORT": str(port),
                "GATEWAY_SUBMIT_BURST": "10000",
                "GATEWAY_SUBMIT_RATE_PER_MIN": "1000000",
                "GATEWAY_READ_BURST": "100000",
                "GATEWAY_READ_RATE_PER_S": "100000",
            }
            self._add("gateway" if index == 0 else f"gateway-{index}", "gateway", env)
        self.gateway_url = self.gateway_urls[0] if self.gateway_urls else ""
        for index in range(self.sweepers if self.sweeper else 0):
            self._add(
                "sweeper" if index == 0 else f"sweeper-{index}",
                "sweeper",
                self._env("SWEEPER", self.mongo_uri),
            )

    def start(self) -> None:
        """Build, start every service and wait until each one listens (JetStream consumers, /health)."""
        if not self.services:
            self.build()
        for service in self.services.values():
            service.start()
        self.wait_ready()

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Wait until the scheduler, results and runner consumers exist and the gateway is healthy."""
        deadline = time.monotonic() + timeout_s
        wanted = [
            (Stream.COMMANDS, SCHEDULER_COMMANDS_CONSUMER),
            (Stream.EVENTS, RESULTS_EVENTS_CONSUMER),
            (Stream.JOBS, RUNNER_JOBS_CONSUMER),
        ]
        if self.sweeper:
            wanted += [
                (Stream.SWEEP_COMMANDS, SWEEPER_COMMANDS_CONSUMER),
                (Stream.EVENTS, SWEEPER_EVENTS_CONSUMER),
            ]
        while time.monotonic() < deadline:
            dead = [s.name for s in self.services.values() if s.process is not None and not s.running]
            if dead:
                raise StackError(f"services exited: {dead}\n{self.log_tails()}")
            if self._consumers_exist(wanted) and self._gateway_healthy():
                return
            time.sleep(0.2)
        raise StackError(f"the stack was not ready within {timeout_s:.0f} s\n{self.log_tails()}")

    def _consumers_exist(self, wanted: Sequence[tuple[Stream, str]]) -> bool:
        async def check(js: JetStreamContext) -> bool:
            for stream, consumer in wanted:
                try:
                    await js.consumer_info(stream.value, consumer)
                except Exception:  # not declared yet, or the server is not up
                    return False
            return True

        try:
            return bool(self.with_js(check))
        except Exception:
            return False

    def _gateway_healthy(self) -> bool:
        try:
            return all(
                httpx.get(f"{url}/health", timeout=1.0).status_code == 200 for url in self.gateway_urls
            )
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        """Stop every service (SIGTERM, then SIGKILL) and drop the database."""
        for service in self.services.values():  # SIGTERM to all at once, then wait for each
            if service.running and service.process is not None:
                service.process.send_signal(signal.SIGTERM)
        for service in self.services.values():
            service.stop(grace_s=20.0)
        with MongoClient(self.mongo_uri, serverSelectionTimeoutMS=5000) as client:
            client.drop_database(self.database)

    def log_tails(self, lines: int = 25) -> str:
        """Return the last log lines of every service, for failure messages."""
        return "\n".join(
            f"--- {s.name} (exit {s.process.poll() if s.process else None}) ---\n{s.tail(lines)}"
            for s in self.services.values()
        )

    # --- NATS -----------------------------------------------------------------------------------

    def with_js(self, work: Any) -> Any:
        """Run `await work(js)` on a fresh NATS connection and return its result."""

        async def main() -> Any:
            nc = await nats.connect(server_urls(self.nats_url), connect_timeout=2, max_reconnect_attempts=0)
            try:
                return await work(nc.jetstream())
            finally:
                await nc.close()

        return asyncio.run(main())

    def queue_state(self) -> str:
        """Describe the job queue and the runners' consumer (for failure messages)."""

        async def describe(js: JetStreamContext) -> str:
            jobs = await js.stream_info(Stream.JOBS.value)
            runner = await js.consumer_info(Stream.JOBS.value, RUNNER_JOBS_CONSUMER)
            return (
                f"{Stream.JOBS.value}: {jobs.state.messages} messages; consumer {RUNNER_JOBS_CONSUMER}: "
                f"{runner.num_pending} pending, {runner.num_ack_pending} awaiting ack, "
                f"{runner.num_redelivered} redelivered, {runner.num_waiting} pull requests waiting"
            )

        try:
            return str(self.with_js(describe))
        except Exception as exc:  # a diagnostic must not hide the failure it describes
            return f"no JetStream state: {exc!r}"

    def submit_nats(self, configs: Sequence[Mapping[str, Any]], user: str = "alice") -> list[str]:
        """Publish SubmitBacktest commands (as the gateway does); return their task ids in order."""
        commands = [
            SubmitBacktest(task_id=new_id(), user_id=user, config=BacktestConfig.model_validate(c))
            for c in configs
        ]

        async def publish(js: JetStreamContext) -> None:
            for command in commands:
                await js.publish(
                    Subject.SUBMIT,
                    command.model_dump_json().encode(),
                    stream=Stream.COMMANDS.value,
                    headers={"Nats-Msg-Id": command.message_id},
                    timeout=10,
                )

        self.with_js(publish)
        return [command.task_id for command in commands]

    def publish_raw(self, subject: str, data: bytes, stream: Stream, msg_id: str) -> bool:
        """Publish bytes into a stream with this `Nats-Msg-Id`; return True if JetStream dropped it
        as a duplicate (same id inside the stream's duplicate window)."""

        async def publish(js: JetStreamContext) -> bool:
            ack = await js.publish(subject, data, stream=stream.value, headers={"Nats-Msg-Id": msg_id})
            return bool(ack.duplicate)

        return bool(self.with_js(publish))

    def headers(self, user: str = "alice") -> dict[str, str]:
        """The gateway's Authorization header for `user` as a researcher (an hour's token)."""
        from backtest_cli.token import create_token

        return {
            "Authorization": f"Bearer {create_token(user, 'researcher', JWT_SECRET.encode(), ttl_s=3600)}"
        }

    def submit_http(
        self, configs: Sequence[Mapping[str, Any]], user: str = "alice", concurrency: int = 16
    ) -> list[tuple[str, float]]:
        """POST /backtest/submit for each config, `concurrency` at a time; return (task id, monotonic
        time just before its request) in config order."""
        headers = self.headers(user)

        async def main() -> list[tuple[str, float]]:
            gate = asyncio.Semaphore(concurrency)
            async with httpx.AsyncClient(base_url=self.gateway_url, headers=headers, timeout=60) as http:

                async def one(config: Mapping[str, Any]) -> tuple[str, float]:
                    async with gate:
                        sent = time.monotonic()
                        response = await http.post("/backtest/submit", json=dict(config))
                    if response.status_code != 202:
                        raise StackError(f"submit answered {response.status_code}: {response.text[:500]}")
                    return str(response.json()["task_id"]), sent

                return list(await asyncio.gather(*(one(config) for config in configs)))

        return asyncio.run(main())

    def stream_messages(self, stream: Stream) -> list[tuple[str, bytes, Mapping[str, str]]]:
        """Return every stored message of a stream as (subject, data, headers), oldest first."""

        async def read(js: JetStreamContext) -> list[tuple[str, bytes, Mapping[str, str]]]:
            info = await js.stream_info(stream.value)
            out: list[tuple[str, bytes, Mapping[str, str]]] = []
            if info.state.messages == 0:
                return out
            for seq in range(max(1, info.state.first_seq), info.state.last_seq + 1):
                try:
                    msg = await js.get_msg(stream.value, seq)
                except NotFoundError:
                    continue
                out.append((msg.subject, msg.data or b"", dict(msg.headers or {})))
            return out

        result: list[tuple[str, bytes, Mapping[str, str]]] = self.with_js(read)
        return result

    def events_by_task(self) -> dict[str, list[dict[str, Any]]]:
        """Return the BACKTEST_EVENTS stream grouped by task id, each list in stream order."""
        grouped: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        for _, data, _ in self.stream_messages(Stream.EVENTS):
            event = json.loads(data)
            grouped[event["task_id"]].append(event)
        return dict(grouped)

    def event_count(self) -> int:
        """Return how many messages BACKTEST_EVENTS holds."""

        async def count(js: JetStreamContext) -> int:
            return int((await js.stream_info(Stream.EVENTS.value)).state.messages)

        return int(self.with_js(count))

    def wait_event_count(self, at_least: int, timeout_s: float = 60.0) -> None:
        """Wait until BACKTEST_EVENTS holds `at_least` messages (polled every 20 ms)."""
        deadline = time.monotonic() + timeout_s
        while self.event_count() < at_least:
            if time.monotonic() > deadline:
                raise StackError(f"fewer than {at_least} events after {timeout_s:.0f} s\n{self.log_tails()}")
            time.sleep(0.02)

    def terminal_event_counts(self, task_ids: Iterable[str]) -> dict[str, int]:
        """Return, per task, how many terminal events the stream holds."""
        grouped = self.events_by_task()
        return {t: sum(e["state"] in TERMINAL for e in grouped.get(t, [])) for t in task_ids}

    def dead_letters(self) -> list[DeadLetteredJob]:
        """Return every DeadLetteredJob in BACKTEST_DEAD."""
        return [DeadLetteredJob.model_validate_json(d) for _, d, _ in self.stream_messages(Stream.DEAD)]

    def wait_terminal_events(self, task_ids: Sequence[str], timeout_s: float) -> None:
        """Wait until BACKTEST_EVENTS holds a terminal event for every task (polled every 0.2 s)."""
        deadline = time.monotonic() + timeout_s
        while True:
            counts = self.terminal_event_counts(task_ids)
            if all(counts.values()):
                return
            if time.monotonic() > deadline:
                raise StackError(f"terminal events after {timeout_s:.0f} s: {counts}\n{self.log_tails()}")
            time.sleep(0.2)

    def wait_consumer_idle(self, stream: Stream, consumer: str, timeout_s: float = 30.0) -> None:
        """Wait until a durable consumer has handled (acked) everything in its stream."""
        deadline = time.monotonic() + timeout_s
        while not self.consumer_idle(stream, consumer):
            if time.monotonic() > deadline:
                raise StackError(f"{consumer} still busy after {timeout_s:.0f} s\n{self.log_tails()}")
            time.sleep(0.2)

    def consumer_idle(self, stream: Stream, consumer: str) -> bool:
        """Return True when a consumer has nothing pending and nothing awaiting an ack."""

        async def check(js: JetStreamContext) -> bool:
            info = await js.consumer_info(stream.value, consumer)
            return info.num_pending == 0 and info.num_ack_pending == 0

        return bool(self.with_js(check))

    # --- MongoDB --------------------------------------------------------------------------------

    def documents(self, task_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Return the `backtests` documents (all of this database's, or those of `task_ids`)."""
        query = {} if task_ids is None else {"_id": {"$in": list(task_ids)}}
        with MongoClient(self.mongo_uri, tz_aware=True, serverSelectionTimeoutMS=5000) as client:
            return list(client[self.database][BACKTESTS_COLLECTION].find(query))

    def wait_terminal(
        self, task_ids: Sequence[str], timeout_s: float, poll_s: float = 0.1
    ) -> dict[str, float]:
        """Wait until every task's document is terminal; return when each was first seen so (monotonic s)."""
        seen: dict[str, float] = {}
        wanted = set(task_ids)
        deadline = time.monotonic() + timeout_s
        with MongoClient(self.mongo_uri, tz_aware=True, serverSelectionTimeoutMS=2000) as client:
            backtests = client[self.database][BACKTESTS_COLLECTION]
            while True:
                missing = list(wanted - seen.keys())
                try:
                    found = backtests.find(
                        {"_id": {"$in": missing}, "state": {"$in": sorted(TERMINAL)}}, {"_id": 1}
                    )
                    now = time.monotonic()
                    for doc in found:
                        seen[doc["_id"]] = now
                except Exception:  # the server may be restarting under a fault test
                    pass
                if len(seen) == len(wanted):
                    return seen
                if time.monotonic() > deadline:
                    states = {d["_id"]: d.get("state") for d in self.documents(missing)}
                    raise StackError(
                        f"{len(wanted) - len(seen)} of {len(wanted)} tasks not terminal after "
                        f"{timeout_s:.0f} s (stored states of those: {states}; "
                        f"{self.queue_state()})\n{self.log_tails()}"
                    )
                time.sleep(poll_s)

    # --- Docker ---------------------------------------------------------------------------------

    def sandbox_containers(self) -> list[SandboxContainer]:
        """Return the sandbox containers (any state) of this stack's platform instance."""
        client = docker.APIClient()
        try:
            rows = client.containers(all=True, filters={"label": f"{LABEL_INSTANCE}={self.database}"})
            return [SandboxContainer(row["Id"], row["Names"][0].lstrip("/"), row["Labels"]) for row in rows]
        finally:
            client.close()

    def remove_containers(self) -> list[str]:
        """Force-remove this stack's sandbox containers; return their names."""
        client = docker.APIClient()
        try:
            left = self.sandbox_containers()
            for container in left:
                client.remove_container(container.id, force=True)
            return [container.name for container in left]
        finally:
            client.close()

    def wait_for_container(self, timeout_s: float = 60.0) -> SandboxContainer:
        """Wait until a sandbox container of this stack exists; return it (polled every 20 ms)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.sandbox_containers()
            if found:
                return found[0]
            time.sleep(0.02)
        raise StackError(f"no sandbox container started within {timeout_s:.0f} s\n{self.log_tails()}")


def percentiles(values: Sequence[float], qs: Sequence[float] = (50, 95, 99)) -> dict[str, float]:
    """Return {"p50": ..., "p95": ..., "max": ...} of `values` (linear interpolation)."""
    ordered = sorted(values)
    out = {}
    for q in qs:
        rank = (len(ordered) - 1) * q / 100
        low = int(rank)
        high = min(low + 1, len(ordered) - 1)
        out[f"p{q:g}"] = ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
    out["max"] = ordered[-1]
    return out
