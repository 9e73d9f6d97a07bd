"""Runner integration fixtures; `docker_client` and `sandbox_image` come from the shared tests/fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import docker
import pytest
from backtest_runner.sandbox.docker_sandbox import LABEL_ROLE, ROLE_SANDBOX


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
