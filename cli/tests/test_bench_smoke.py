"""The engine benchmark runs end to end at smoke size (no timing is asserted: speed lives in bench/)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "engine.py"


@pytest.mark.slow
def test_bench_quick_prints_every_ratio_and_agrees_with_vectorbt() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for label in (
        "(a) ours / vectorbt",
        "(b) ours / vectorbt",
        "(c) ours per-bar / backtesting.py",
        "(a) ours / backtesting.py",
    ):
        match = re.search(re.escape(label) + r"\s+([0-9.]+)x", out)
        assert match is not None, out
        assert float(match.group(1)) > 0
    gap = re.search(r"ours vs vectorbt final equity: relative difference ([0-9.e+-]+)", out)
    assert gap is not None and float(gap.group(1)) < 1e-9
    assert re.search(r"peak memory, ours on \(a\), fresh process \(maxrss\): \d+ MB", out)
