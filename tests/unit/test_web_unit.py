"""The dashboard's front-end unit tests (vitest in web/) run as part of pytest."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

WEB = Path(__file__).resolve().parents[2] / "web"


def test_vitest_passes() -> None:
    if shutil.which("npm") is None:
        pytest.fail("npm is not installed: the dashboard's tests need Node.js and npm", pytrace=False)
    if not (WEB / "node_modules" / ".bin" / "vitest").exists():
        pytest.fail("web/node_modules is missing: run scripts/setup (npm ci in web/)", pytrace=False)
    done = subprocess.run(["npm", "test"], cwd=WEB, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout
