"""ProgressThrottle: quiet at first, then forward-only and rate-limited, with a step that passes."""

from __future__ import annotations

import pytest
from backtest_core.contracts import SandboxProgress
from backtest_runner.progress import ProgressThrottle

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _p(fraction: float) -> SandboxProgress:
    return SandboxProgress(fraction=fraction, stage="s")


def test_a_job_shorter_than_the_interval_reports_no_progress() -> None:
    clock = Clock()
    throttle = ProgressThrottle(min_interval_s=0.25, min_step=0.1, clock=clock)

    passed = []
    for fraction in (0.0, 0.0, 0.85, 0.95, 1.0):
        clock.now += 0.01
        passed += [fraction] if throttle.admit(_p(fraction)) else []

    assert passed == []


def test_the_first_update_after_the_quiet_start_passes_then_the_steps() -> None:
    clock = Clock()
    throttle = ProgressThrottle(min_interval_s=0.25, min_step=0.1, clock=clock)
    assert not throttle.admit(_p(0.05))
    clock.now += 0.25

    assert throttle.admit(_p(0.06))
    assert not throttle.admit(_p(0.1))
    assert throttle.admit(_p(0.16))


def test_a_burst_of_tiny_steps_is_cut_to_the_first_and_each_step_boundary() -> None:
    clock = Clock()
    throttle = ProgressThrottle(min_interval_s=1.0, min_step=0.1, clock=clock)
    clock.now += 1.0

    passed = [i / 1000 for i in range(1001) if throttle.admit(_p(i / 1000))]

    assert passed == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


def test_a_small_step_passes_once_the_interval_elapsed() -> None:
    clock = Clock()
    throttle = ProgressThrottle(min_interval_s=0.5, min_step=0.5, clock=clock)
    clock.now += 0.5
    assert throttle.admit(_p(0.1))
    clock.now += 0.4
    assert not throttle.admit(_p(0.11))
    clock.now += 0.1

    assert throttle.admit(_p(0.12))


def test_progress_never_goes_backwards() -> None:
    clock = Clock()
    throttle = ProgressThrottle(min_interval_s=0.0, min_step=0.1, clock=clock)
    assert throttle.admit(_p(0.5))
    clock.now += 10

    assert not throttle.admit(_p(0.4))
    assert throttle.admit(_p(0.5))
