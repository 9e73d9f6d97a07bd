"""Throttle the sandbox's progress lines into a bounded number of RunProgressed reports."""

from __future__ import annotations

from collections.abc import Callable

from backtest_core.contracts import SandboxProgress

STEP_TOLERANCE = 1e-9  # so 0.3 - 0.2 counts as a step of 0.1


class ProgressThrottle:
    """Pass a progress update only if it moves forward and is worth a message.

    Nothing passes before `min_interval_s` has elapsed since the throttle was made (the job started):
    a job shorter than that is reported by its start and its end alone, so the thousands of small jobs
    of a sweep or a batch cost no progress messages (each one is a task update and an event for the
    scheduler, the results writer and the gateway). After that, an update passes when its fraction is
    not below the last passed one and either `min_interval_s` has elapsed since the last passed update
    or the fraction advanced by at least `min_step`. So a run produces at most about
    1/min_step + duration/min_interval_s reports, however chatty the engine. `clock` returns seconds
    (monotonic).
    """

    def __init__(self, min_interval_s: float, min_step: float, clock: Callable[[], float]) -> None:
        self._min_interval_s = min_interval_s
        self._min_step = min_step
        self._clock = clock
        self._quiet_until = clock() + min_interval_s
        self._last_time: float | None = None
        self._last_fraction = -1.0

    def admit(self, progress: SandboxProgress) -> bool:
        """Return True if this update should be published (and remember it as the last one)."""
        now = self._clock()
        if now < self._quiet_until or progress.fraction < self._last_fraction:
            return False
        due = self._last_time is None or now - self._last_time >= self._min_interval_s
        if not due and progress.fraction - self._last_fraction < self._min_step - STEP_TOLERANCE:
            return False
        self._last_time = now
        self._last_fraction = progress.fraction
        return True
