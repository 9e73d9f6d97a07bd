"""Log files of background processes are readable by their owner only: they can hold request lines."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.unit


def test_start_bg_creates_its_log_file_and_log_folder_owner_only(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    script = f'source "{REPO}/scripts/lib.sh"; start_bg probe "$LOGS/probe.log" echo hello; wait'

    subprocess.run(
        ["bash", "-c", script], env={"BACKTEST_RUN_DIR": str(run_dir), "PATH": "/usr/bin:/bin"}, check=True
    )

    log = run_dir / "logs" / "probe.log"
    assert log.read_text() == "hello\n"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE((run_dir / "logs").stat().st_mode) == 0o700


def test_start_bg_makes_an_existing_world_readable_log_owner_only(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "logs").mkdir(parents=True)
    log = run_dir / "logs" / "probe.log"
    log.write_text("old line\n")
    log.chmod(0o644)
    script = f'source "{REPO}/scripts/lib.sh"; start_bg probe "$LOGS/probe.log" echo hello; wait'

    subprocess.run(
        ["bash", "-c", script], env={"BACKTEST_RUN_DIR": str(run_dir), "PATH": "/usr/bin:/bin"}, check=True
    )

    assert log.read_text() == "old line\nhello\n"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
