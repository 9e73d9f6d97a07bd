"""Runner ids and work dirs are unique per process by default, so runners share a host safely."""

from __future__ import annotations

from pathlib import Path

import pytest
from backtest_runner.heartbeats import heartbeat_key
from backtest_runner.settings import RunnerSettings, default_runner_id
from pydantic import ValidationError


def test_default_ids_differ_per_runner_and_start_with_the_sanitised_host_name() -> None:
    ids = {default_runner_id("build.7 ci") for _ in range(50)}
    assert len(ids) == 50
    for runner_id in ids:
        host, suffix = runner_id.rsplit("-", 1)
        assert host == "build-7-ci"
        assert len(suffix) == 8 and int(suffix, 16) >= 0


def test_two_default_settings_get_distinct_ids_and_distinct_work_dirs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RUNNER_RUNNER_ID", raising=False)
    monkeypatch.delenv("RUNNER_WORK_DIR", raising=False)
    first, second = RunnerSettings(), RunnerSettings()
    assert first.runner_id != second.runner_id
    assert first.job_root() == Path("/tmp/backtest-runner") / first.runner_id
    assert first.job_root() != second.job_root()
    assert RunnerSettings(work_dir=Path("/data/jobs")).job_root() == Path("/data/jobs")


def test_an_id_that_cannot_be_a_kv_key_token_is_refused() -> None:
    with pytest.raises(ValidationError, match="runner_id"):
        RunnerSettings(runner_id="a.b")
    with pytest.raises(ValidationError, match="instance_id"):
        RunnerSettings(instance_id="x y")


def test_the_heartbeat_key_is_instance_then_runner() -> None:
    assert heartbeat_key("prod", "vm-1a2b3c4d") == "prod.vm-1a2b3c4d"
