"""The whole platform as separate processes: gateway, scheduler, sweeper, runner and results over real NATS
JetStream, the MongoDB-compatible server and Docker, with the repo's real candles loaded."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from backtest_core.contracts import new_id
from backtest_marketdata.ingest import Ingestor, discover
from backtest_testinfra import free_port
from pymongo import MongoClient
from pymongo.database import Database

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data" / "binance" / "spot" / "monthly" / "klines"
SYMBOLS = ("BTCUSD", "ETHUSD")
JWT_SECRET = "e2e-secret-0123456789abcdef-0123456789ab"
READY_TIMEOUT_S = 60.0


@dataclass
class Platform:
    """The running stack: the gateway's URL, the database the services share, their logs."""

    gateway_url: str
    db: Database[dict]
    database: str
    env: dict[str, str]
    logs: Path
    started_at: int = 0  # epoch seconds, before any service started
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def log_tails(self, lines: int = 30) -> str:
        """The last lines of every service's log, for failure messages."""
        parts = []
        for name in self.processes:
            path = self.logs / f"{name}.log"
            text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
            parts.append(f"--- {name} (exit {self.processes[name].poll()}) ---\n" + "\n".join(text))
        return "\n".join(parts)


def _service_env(prefix: str, nats_url: str, mongo_uri: str, database: str) -> dict[str, str]:
    return {
        f"{prefix}_NATS_URL": nats_url,
        f"{prefix}_MONGODB_URI": mongo_uri,
        f"{prefix}_MONGODB_DATABASE": database,
    }


def _stop(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + 20
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def platform(
    request: pytest.FixtureRequest,
    nats_url: str,
    mongo_uri: str,
    mongo_readonly_uri: str,
    sandbox_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Platform]:
    """Load the real candles into a fresh database and start the five services against it.

    A test module may set `PLATFORM_ENV: dict[str, str]` to override the services' settings for its
    own platform, e.g. `{"RUNNER_WALL_CLOCK_S": "8", "RUNNER_MEMORY_MB": "256", "RUNNER_SLOTS": "4"}`.
    """
    database = f"e2e_{new_id()[:12]}"
    work = tmp_path_factory.mktemp("e2e")
    client: MongoClient[dict] = MongoClient(mongo_uri, tz_aware=True)
    db = client[database]
    ingestor = Ingestor(db)
    ingestor.ensure_indexes()
    summary = ingestor.ingest(discover([str(DATA / symbol / "1d") for symbol in SYMBOLS]))
    if summary.rejected:
        pytest.fail(f"the shipped candles did not load: {summary.rejected}", pytrace=False)
    port = free_port()
    env = {
        **os.environ,
        **_service_env("GATEWAY", nats_url, mongo_uri, database),
        **_service_env("SCHEDULER", nats_url, mongo_uri, database),
        **_service_env("RESULTS", nats_url, mongo_uri, database),
        **_service_env("SWEEPER", nats_url, mongo_uri, database),
        **_service_env("RUNNER", nats_url, mongo_readonly_uri, database),
        # candles and symbols are read as the read-only user, as scripts/up does
        "GATEWAY_CANDLES_MONGODB_URI": mongo_readonly_uri,
        "SCHEDULER_CANDLES_MONGODB_URI": mongo_readonly_uri,
        "GATEWAY_JWT_SECRET": JWT_SECRET,
        "GATEWAY_PORT": str(port),
        "RUNNER_SANDBOX_IMAGE": sandbox_image,
        "RUNNER_RUNNER_ID": f"e2e-{database}",
        "RUNNER_WORK_DIR": str(work / "runner"),
        "RUNNER_SLOTS": "2",
        **getattr(request.module, "PLATFORM_ENV", {}),
    }
    stack = Platform(f"http://127.0.0.1:{port}", db, database, env, work, started_at=int(time.time()) - 1)
    try:
        for name in ("results", "scheduler", "sweeper", "runner", "gateway"):
            log = (work / f"{name}.log").open("wb")
            stack.processes[name] = subprocess.Popen(
                [sys.executable, "-m", f"backtest_{name}"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        _wait_ready(stack)
        yield stack
    finally:
        _stop(stack.processes)
        client.drop_database(database)
        client.close()


def _wait_ready(stack: Platform) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        dead = [name for name, process in stack.processes.items() if process.poll() is not None]
        if dead:
            pytest.fail(f"services exited at start: {dead}\n{stack.log_tails()}", pytrace=False)
        try:
            if httpx.get(f"{stack.gateway_url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the gateway was not healthy within {READY_TIMEOUT_S} s\n{stack.log_tails()}", pytrace=False)
