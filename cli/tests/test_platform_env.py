"""Reading the platform's run folder: the env file `scripts/infra up` writes, and where it is looked for."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from backtest_cli.platform_env import PlatformEnvError, find_setting, read_env_file, run_dir


def test_env_file_as_scripts_infra_writes_it_is_read_with_quotes_removed(tmp_path: Path) -> None:
    env = tmp_path / "env"
    env.write_text(
        "# Written by scripts/infra up\n"
        "MONGODB_URI='mongodb://admin:p@127.0.0.1:27017/backtest?replicaSet=rs0&authSource=admin'\n"
        'BACKTEST_MONGO_KIND="SecantusDB 0.7.0b3 emulator"\n'
        "export NATS_URL=nats://127.0.0.1:4222\n\n"
    )

    assert read_env_file(env) == {
        "MONGODB_URI": "mongodb://admin:p@127.0.0.1:27017/backtest?replicaSet=rs0&authSource=admin",
        "BACKTEST_MONGO_KIND": "SecantusDB 0.7.0b3 emulator",
        "NATS_URL": "nats://127.0.0.1:4222",
    }


def test_malformed_env_file_line_is_named_with_what_was_expected(tmp_path: Path) -> None:
    env = tmp_path / "env"
    env.write_text("MONGODB_URI='mongodb://x'\nnot an assignment\n")

    with pytest.raises(PlatformEnvError, match=r"env: line 2: expected NAME=value, was 'not an assignment'"):
        read_env_file(env)


def test_run_dir_is_the_checkout_of_the_virtualenv_unless_backtest_run_dir_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BACKTEST_RUN_DIR", raising=False)
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "checkout" / ".venv"))
    monkeypatch.setattr(sys, "base_prefix", "/usr")
    assert run_dir() == tmp_path / "checkout" / ".run"

    monkeypatch.setenv("BACKTEST_RUN_DIR", str(tmp_path / "elsewhere"))
    assert run_dir() == tmp_path / "elsewhere"

    monkeypatch.delenv("BACKTEST_RUN_DIR")
    monkeypatch.setattr(sys, "prefix", "/usr")
    assert run_dir() is None


def test_variable_in_the_environment_wins_over_the_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "env").write_text("MONGODB_URI='mongodb://from-file'\n")
    monkeypatch.setenv("BACKTEST_RUN_DIR", str(tmp_path))
    monkeypatch.delenv("MONGODB_URI", raising=False)
    found = find_setting("MONGODB_URI")
    assert found is not None
    assert (found.value, found.source) == ("mongodb://from-file", str(tmp_path / "env"))

    monkeypatch.setenv("MONGODB_URI", "mongodb://explicit")
    found = find_setting("MONGODB_URI")
    assert found is not None
    assert (found.value, found.source) == ("mongodb://explicit", "MONGODB_URI")
