"""The scripts run this checkout's code from its own virtual environment, never the machine's Python.

A second checkout (a colleague's branch, a second platform instance) installs into its own `.venv`, so it
cannot re-point the code that this checkout's services and `backtest` command run.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv"
DISTRIBUTIONS = {
    "backtest-core": "libs/core",
    "backtest-marketdata": "libs/marketdata",
    "backtest-messaging": "libs/messaging",
    "backtest-observability": "libs/observability",
    "backtest-gateway": "services/gateway",
    "backtest-scheduler": "services/scheduler",
    "backtest-runner": "services/runner",
    "backtest-results": "services/results",
    "backtest-sweeper": "services/sweeper",
    "backtest-research": "libs/research",
    "backtest-cli": "cli",
}


def script_python(env: dict[str, str] | None = None) -> str:
    """Return the interpreter scripts/lib.sh chooses (what scripts/up, test and demo run)."""
    done = subprocess.run(
        ["bash", "-c", f'source "{REPO}/scripts/lib.sh"; echo "$PY"; command -v backtest'],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return done.stdout


def test_scripts_run_the_project_venv_python_and_backtest_command() -> None:
    python, backtest = script_python({"PATH": "/usr/bin:/bin"}).split()

    assert Path(python) == VENV / "bin" / "python"
    assert Path(backtest) == VENV / "bin" / "backtest"


def test_the_test_session_runs_inside_the_project_venv() -> None:
    if Path(sys.prefix).resolve() != VENV.resolve():
        pytest.fail(f"pytest runs from {sys.prefix}, not {VENV}: run the tests with scripts/test")

    assert sys.prefix != sys.base_prefix


def test_every_package_is_installed_editable_from_this_checkout() -> None:
    pointed = {}
    for name in DISTRIBUTIONS:
        info = json.loads(md.distribution(name).read_text("direct_url.json") or "{}")
        pointed[name] = (info.get("dir_info", {}).get("editable"), info.get("url"))

    assert pointed == {name: (True, (REPO / path).as_uri()) for name, path in DISTRIBUTIONS.items()}
