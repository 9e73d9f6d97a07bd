"""The Kubernetes exec probe (deploy/kubernetes/probes/nats_connected.py) on a real service and a real NATS.

It passes while the results writer's process holds its NATS connection, and fails with the reason once NATS
stops or the process is gone: what the kubelet's liveness probe acts on.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from backtest_testinfra import NatsServer

PROBE = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "probes" / "nats_connected.py"
WAIT_S = 30.0


def probe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the probe as the kubelet would (the container's environment)."""
    return subprocess.run(
        [sys.executable, str(PROBE), *args], env=env, capture_output=True, text=True, timeout=30
    )


def wait_for_exit_code(env: dict[str, str], code: int) -> subprocess.CompletedProcess[str]:
    """Run the probe every 0.2 s until it exits with `code` (at most WAIT_S); return that run."""
    deadline = time.monotonic() + WAIT_S
    done = probe(env, "backtest_results", "RESULTS_NATS_URL")
    while done.returncode != code and time.monotonic() < deadline:
        time.sleep(0.2)
        done = probe(env, "backtest_results", "RESULTS_NATS_URL")
    return done


@pytest.fixture
def results_writer(
    nats_server_factory: Callable[[], NatsServer], mongo_uri: str, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], NatsServer, dict[str, str]]]:
    """Start `python -m backtest_results` on a private NATS server; yield it, the server and its env."""
    server = nats_server_factory()
    env = {**os.environ, "RESULTS_NATS_URL": server.url, "RESULTS_MONGODB_URI": mongo_uri}
    with (tmp_path / "results.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "backtest_results"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield process, server, env
    finally:
        process.kill()
        process.wait(timeout=10)


def test_probe_passes_while_connected_and_fails_once_nats_stops_or_the_process_is_gone(
    results_writer: tuple[subprocess.Popen[bytes], NatsServer, dict[str, str]],
) -> None:
    process, server, env = results_writer

    connected = wait_for_exit_code(env, 0)
    assert connected.returncode == 0, connected.stderr
    assert connected.stdout.strip() == (
        f"backtest_results (pid {process.pid}) is connected to NATS on port {server.port}"
    )

    server.stop()
    cut = wait_for_exit_code(env, 1)
    assert cut.returncode == 1
    assert f"(pid {process.pid}" in cut.stderr
    assert cut.stderr.strip().endswith(f"has no established connection to NATS port {server.port}")

    process.kill()
    process.wait(timeout=10)
    gone = probe(env, "backtest_results", "RESULTS_NATS_URL")
    assert gone.returncode == 1
    assert str(process.pid) not in gone.stderr


def test_probe_refuses_a_missing_url_variable_or_wrong_arguments_with_exit_2() -> None:
    env = {key: value for key, value in os.environ.items() if key != "RESULTS_NATS_URL"}

    unset = probe(env, "backtest_results", "RESULTS_NATS_URL")
    wrong = probe(env, "backtest_results")

    assert unset.returncode == 2
    assert unset.stderr.strip() == (
        "RESULTS_NATS_URL is not set: expected the service's NATS URL, e.g. nats://nats:4222"
    )
    assert wrong.returncode == 2
    assert wrong.stderr.strip() == "expected 2 arguments (MODULE URL_VARIABLE), got 1: ['backtest_results']"
