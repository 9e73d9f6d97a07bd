"""docker-compose.yml and the Dockerfiles in deploy/ describe the platform issue 6 asks for, and are valid."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("gateway", "scheduler", "runner", "results", "sweeper")
MONGODS = ("mongo1", "mongo2", "mongo-arbiter")
PASSWORDS = {
    "GATEWAY_JWT_SECRET": "x" * 48,
    "MONGO_ROOT_PASSWORD": "r00t-pw",
    "MONGO_READER_PASSWORD": "read-pw",
}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return data


def compose_config(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `docker-compose config ARGS` on the repo's file with exactly these variables set."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not installed: run scripts/setup")
    unset = {key: value for key, value in os.environ.items() if key not in PASSWORDS}
    return subprocess.run(
        [binary, "-f", str(REPO / "docker-compose.yml"), "config", *args],
        capture_output=True,
        text=True,
        env={**unset, **env},
        timeout=60,
    )


def resolved() -> dict[str, Any]:
    """Return the compose file as docker-compose resolves it with PASSWORDS set."""
    done = compose_config(PASSWORDS)
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = yaml.safe_load(done.stdout)
    return data


def test_compose_file_is_valid_for_docker_compose() -> None:
    done = compose_config(PASSWORDS, "--services")

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
    services = resolved()["services"]
    init = services["mongo-init"]
    script = (REPO / "deploy/mongo/init-replica-set.js").read_text()

    assert init["environment"]["MONGO_MEMBERS"] == "mongo1:27017,mongo2:27017,mongo-arbiter:27017=arbiter"
    assert init["entrypoint"] == ["mongosh", "--quiet", "--host", "mongo1", "/scripts/init-replica-set.js"]
    assert f"{REPO}/deploy/mongo/init-replica-set.js:/scripts/init-replica-set.js:ro" in init["volumes"]
    assert "arbiterOnly: true" in script and "isWritablePrimary" in script and "rs.initiate" in script
    for name in (*MONGODS, "nats", "gateway"):
        assert services[name]["healthcheck"]["test"][0] == "CMD"


def test_compose_refuses_to_start_without_the_mongo_passwords_and_names_the_missing_one() -> None:
    for missing in ("MONGO_ROOT_PASSWORD", "MONGO_READER_PASSWORD"):
        done = compose_config({k: v for k, v in PASSWORDS.items() if k != missing})

        assert done.returncode != 0
        assert f"set {missing} to a URL-safe password" in done.stderr


def test_compose_mongo_members_authenticate_with_a_keyfile_generated_at_start() -> None:
    services = resolved()["services"]
    keygen = services["mongo-keyfile"]
    script = keygen["entrypoint"][-1]

    assert "/dev/urandom" in script and "chmod 0400" in script and "chown 999:999" in script
    assert "[ -s /keyfile/keyfile ] ||" in script  # generated once, kept across restarts in its volume
    for name in MONGODS:
        mongod = services[name]
        assert mongod["command"] == [
            "mongod",
            "--replSet",
            "rs0",
            "--bind_ip_all",
            "--keyFile",
            "/etc/mongo-keyfile/keyfile",
        ]
        assert "mongo-keyfile:/etc/mongo-keyfile:ro" in mongod["volumes"]
        assert mongod["depends_on"]["mongo-keyfile"]["condition"] == "service_completed_successfully"
        assert mongod["environment"] == {
            "MONGO_INITDB_ROOT_USERNAME": "admin",
            "MONGO_INITDB_ROOT_PASSWORD": PASSWORDS["MONGO_ROOT_PASSWORD"],
        }
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True)
    assert not [path for path in tracked.stdout.split() if "keyfile" in path.lower()]


def test_compose_services_connect_with_the_users_and_passwords_from_the_environment() -> None:
    services = resolved()["services"]
    hosts = "mongo1:27017,mongo2:27017/backtest?replicaSet=rs0&authSource=admin"
    admin = f"mongodb://admin:{PASSWORDS['MONGO_ROOT_PASSWORD']}@{hosts}"
    reader = (
        f"mongodb://reader:{PASSWORDS['MONGO_READER_PASSWORD']}@{hosts}&readPreference=secondaryPreferred"
    )

    assert services["results"]["environment"]["RESULTS_MONGODB_URI"] == admin
    assert services["scheduler"]["environment"]["SCHEDULER_MONGODB_URI"] == admin
    assert services["scheduler"]["environment"]["SCHEDULER_CANDLES_MONGODB_URI"] == reader
    assert (
        services["gateway"]["environment"]["GATEWAY_MONGODB_URI"]
        == f"{admin}&readPreference=secondaryPreferred"
    )
    assert services["gateway"]["environment"]["GATEWAY_CANDLES_MONGODB_URI"] == reader
    assert services["runner"]["environment"]["RUNNER_MONGODB_URI"] == reader
    assert (
        services["mongo-init"]["environment"]["MONGO_READER_PASSWORD"] == PASSWORDS["MONGO_READER_PASSWORD"]
    )
