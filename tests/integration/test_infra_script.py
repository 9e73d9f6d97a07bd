"""scripts/infra starts NATS and the Mongo-compatible server, reports them, stops only what it started."""

from __future__ import annotations

import os
import subprocess
import urllib.request
from pathlib import Path

import pytest
from backtest_testinfra import NatsServer, free_port
from pymongo import MongoClient

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "scripts" / "infra"


def infra(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(INFRA), *args], env=env, capture_output=True, text=True, timeout=180)


def pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def infra_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URI", "MONGODB_READONLY_URI")}
    env |= {
        "BACKTEST_RUN_DIR": str(tmp_path / "run"),
        "BACKTEST_NATS_PORT": str(free_port()),
        "BACKTEST_NATS_MONITOR_PORT": str(free_port()),
        "BACKTEST_MONGO_PORT": str(free_port()),
    }
    return env


def test_up_writes_env_with_working_uris_and_down_stops_both_servers(infra_env: dict[str, str]) -> None:
    run = Path(infra_env["BACKTEST_RUN_DIR"])
    up = infra(infra_env, "up", "nats", "mongo")
    try:
        assert up.returncode == 0, up.stderr
        env_lines = dict(line.split("=", 1) for line in (run / "env").read_text().splitlines() if "=" in line)
        uri, readonly_uri = env_lines["MONGODB_URI"].strip("'"), env_lines["MONGODB_READONLY_URI"].strip("'")
        pids = {name: int((run / "pids" / f"{name}.pid").read_text()) for name in ("nats", "mongo")}
        admin: MongoClient[dict[str, object]] = MongoClient(uri, w="majority")
        reader: MongoClient[dict[str, object]] = MongoClient(readonly_uri)
        with admin, reader:
            admin.get_default_database().symbols.insert_one({"symbol": "BTCUSD"})
            found = reader.get_default_database().symbols.find_one({}, {"_id": 0})
        monitor = f"http://127.0.0.1:{infra_env['BACKTEST_NATS_MONITOR_PORT']}/healthz?js-enabled-only=true"
        with urllib.request.urlopen(monitor, timeout=5) as response:
            nats_status = response.status
        status = infra(infra_env, "status")
    finally:
        down = infra(infra_env, "down", "nats", "mongo")

    assert found == {"symbol": "BTCUSD"}
    assert nats_status == 200
    assert "nats     JetStream healthy" in status.stdout
    assert "mongo    answers: SecantusDB" in status.stdout
    assert down.returncode == 0, down.stderr
    assert not any(pid_running(pid) for pid in pids.values())
    assert not (run / "env").exists()


def test_down_leaves_a_nats_server_it_did_not_start_running(
    infra_env: dict[str, str], tmp_path: Path
) -> None:
    foreign = NatsServer(tmp_path / "foreign")
    infra_env |= {
        "BACKTEST_NATS_PORT": str(foreign.port),
        "BACKTEST_NATS_MONITOR_PORT": str(foreign.monitor_port),
    }
    foreign.start()
    try:
        up = infra(infra_env, "up", "nats")
        down = infra(infra_env, "down", "nats")
        still_healthy = foreign.healthy()
    finally:
        foreign.stop()

    assert up.returncode == 0, up.stderr
    assert "already running" in up.stderr and "not started here" in up.stderr
    assert down.returncode == 0
    assert still_healthy is True
