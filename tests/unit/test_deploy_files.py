"""docker-compose.yml and the Dockerfiles in deploy/ describe the platform issue 6 asks for, and are valid."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("gateway", "scheduler", "runner", "results")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return data


def test_compose_file_is_valid_for_docker_compose() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not installed: run scripts/setup")
    env = {**os.environ, "GATEWAY_JWT_SECRET": "x" * 48}
    done = subprocess.run(
        [binary, "-f", str(REPO / "docker-compose.yml"), "config", "--services"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert set(done.stdout.split()) >= {*SERVICES, "nats", "mongo1", "mongo2", "mongo-arbiter", "jaeger"}


def test_every_service_builds_from_its_dockerfile_and_runs_its_package() -> None:
    services = compose()["services"]
    for name in SERVICES:
        dockerfile = services[name]["build"]["dockerfile"]
        text = (REPO / dockerfile).read_text()

        assert dockerfile == f"deploy/{name}/Dockerfile"
        assert text.startswith("# ") and "FROM python:3.11-slim" in text
        assert f'ENTRYPOINT ["python", "-m", "backtest_{name}"]' in text
        assert (REPO / "services" / name / "src" / f"backtest_{name}" / "__main__.py").is_file()
        assert f"{name.upper()}_MONGODB_URI" in services[name]["environment"]
        assert f"{name.upper()}_NATS_URL" in services[name]["environment"]


def test_runner_scales_and_reads_from_a_secondary() -> None:
    runner = compose()["services"]["runner"]

    assert "container_name" not in runner and "ports" not in runner
    assert "readPreference=secondaryPreferred" in runner["environment"]["RUNNER_MONGODB_URI"]
    assert "/var/run/docker.sock:/var/run/docker.sock" in runner["volumes"]
    assert runner["depends_on"]["sandbox-image"]["condition"] == "service_completed_successfully"


def test_mongo_replica_set_has_primary_secondary_and_arbiter_initiated_automatically() -> None:
    services = compose()["services"]
    script = services["mongo-init"]["entrypoint"][-1]
    members = re.findall(r'host: "([\w-]+):27017"', script)

    assert members == ["mongo1", "mongo2", "mongo-arbiter"]
    assert "arbiterOnly: true" in script and "isWritablePrimary" in script
    for name in ("mongo1", "mongo2", "mongo-arbiter", "nats", "gateway"):
        assert services[name]["healthcheck"]["test"][0] == "CMD"
