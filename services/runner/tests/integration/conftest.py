"""Real Docker engine fixtures for the runner's sandbox tests.

`docker_client` and `sandbox_image` are defined here only until the shared fixtures in tests/fixtures/
provide them; the image is built offline by deploy/sandbox/build_image.sh (--if-stale).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from backtest_runner.sandbox.docker_sandbox import LABEL_ROLE, ROLE_SANDBOX

REPO = Path(__file__).resolve().parents[4]


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """Yield a client of the local Docker engine (fails if the engine is not running)."""
    client = docker.from_env()
    client.ping()
    yield client
    client.close()


@pytest.fixture(scope="session")
def sandbox_image(docker_client: docker.DockerClient) -> str:
    """Return the sandbox image tag, built from the current sources if missing or stale."""
    image = os.environ.get("SANDBOX_IMAGE", "backtest-sandbox:latest")
    subprocess.run(
        [str(REPO / "deploy/sandbox/build_image.sh"), "--if-stale"],
        check=True,
        env={**os.environ, "SANDBOX_IMAGE": image},
    )
    return image


@pytest.fixture
def no_sandbox_left_behind(docker_client: docker.DockerClient) -> Iterator[str]:
    """Yield a unique runner id; after the test assert no sandbox container of that runner remains."""
    runner_id = f"test-{os.getpid()}-{os.urandom(4).hex()}"
    yield runner_id
    left = docker_client.containers.list(
        all=True, filters={"label": [f"{LABEL_ROLE}={ROLE_SANDBOX}", f"io.backtest.runner_id={runner_id}"]}
    )
    for container in left:
        container.remove(force=True)
    assert [c.name for c in left] == []
