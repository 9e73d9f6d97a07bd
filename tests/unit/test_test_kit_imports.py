"""Loading the test kit (the root plugin) imports no driver: a unit test run stays pure and quick."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DRIVERS = ("docker", "pymongo", "nats", "httpx", "testcontainers")
PURE_UNIT_TESTS = REPO / "libs" / "core" / "tests" / "unit" / "test_fills.py"

pytestmark = pytest.mark.unit


def _drivers_imported_after(code: str) -> list[str]:
    """Run `code` in a fresh interpreter at the repo root; return the drivers it left in sys.modules."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {DRIVERS!r} if m in sys.modules]))"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    imported: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return imported


def test_the_root_conftest_and_its_fixture_plugins_import_no_driver() -> None:
    code = (
        "import importlib, runpy\n"
        "plugins = runpy.run_path('conftest.py').get('pytest_plugins', [])\n"
        "assert plugins, 'the root conftest registers no fixture plugins'\n"
        "for name in plugins:\n"
        "    importlib.import_module(name)\n"
    )

    assert _drivers_imported_after(code) == []


def test_collecting_a_pure_unit_test_file_imports_no_driver() -> None:
    code = (
        "import pytest\n"
        f"code = pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', {str(PURE_UNIT_TESTS)!r}])\n"
        "assert code == 0, code\n"
    )

    assert _drivers_imported_after(code) == []


def test_a_name_of_the_kit_is_imported_from_its_module_on_first_use() -> None:
    code = (
        "import runpy\n"
        "runpy.run_path('conftest.py')\n"
        "from backtest_testinfra import MongoEmulator, free_port\n"
        "assert MongoEmulator.__module__ == 'backtest_testinfra.mongo_server'\n"
        "assert free_port() > 0\n"
    )

    assert _drivers_imported_after(code) == []
