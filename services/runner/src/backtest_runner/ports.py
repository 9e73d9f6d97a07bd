"""The runner's ports: what the job loop needs from the outside world, as Protocols."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeAlias

from backtest_core.contracts import RunFailed, RunProgressed, RunStarted, RunSucceeded, SandboxProgress
from backtest_core.model.candles import Candles

from backtest_runner.sandbox.docker_sandbox import SandboxRun
from backtest_runner.sandbox.limits import SandboxLimits
from backtest_runner.sandbox.outcome import KillSwitch, SandboxOutcome
from backtest_runner.sandbox.output import ParsedLine

RunReport: TypeAlias = RunStarted | RunProgressed | RunSucceeded | RunFailed


class CandleSource(Protocol):
    """Read one symbol's candles (blocking; called from a worker thread)."""

    def load(self, symbol: str, interval: str, start_ns: int | None, end_ns: int | None) -> Candles:
        """Return the bars with start_ns <= open_time < end_ns (None = unbounded); empty if none."""
        ...


class Sandbox(Protocol):
    """Run one job directory in isolation."""

    @property
    def limits(self) -> SandboxLimits:
        """Return the limits runs are held to."""
        ...

    def remove_orphans(self) -> int:
        """Remove what an earlier instance of this runner left behind; return how many."""
        ...

    async def run(
        self, run: SandboxRun, on_progress: Callable[[SandboxProgress], None], kill_switch: KillSwitch
    ) -> SandboxOutcome:
        """Run to the end (or until killed); progress callbacks arrive on the event loop, in order."""
        ...

    async def run_batch(
        self, run: SandboxRun, jobs: int, on_line: Callable[[ParsedLine], None], kill_switch: KillSwitch
    ) -> SandboxOutcome | None:
        """Run a batch of `jobs` jobs; every line arrives on the event loop, in order. None: every job
        ended with its final line; else what the container's end means for the job running then."""
        ...


class ReportTooLarge(Exception):
    """A report's JSON is larger than the platform carries in one message (nothing was published)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the report is {size} bytes of JSON, over the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class ReportPublisher(Protocol):
    """Publish a run report durably (returns once the broker stored it)."""

    async def publish(self, report: RunReport) -> None:
        """Publish one report on `Subject.run(report.task_id)`; ReportTooLarge if it cannot go."""
        ...


class JobMessage(Protocol):
    """One delivery of a RunBacktestJob from the work queue."""

    @property
    def data(self) -> bytes:
        """Return the message body (RunBacktestJob JSON)."""
        ...

    def in_progress(self) -> Awaitable[None]:
        """Reset the redelivery timer."""
        ...

    def ack(self) -> Awaitable[None]:
        """Mark the job done; the work queue deletes it."""
        ...

    def nak(self, delay: float | None = None) -> Awaitable[None]:
        """Hand the job back for redelivery, after `delay` seconds if given."""
        ...

    def term(self) -> Awaitable[None]:
        """Drop a message that can never be processed."""
        ...


class JobSource(Protocol):
    """The work queue, shared by every runner."""

    async def fetch(self, limit: int, timeout_s: float) -> list[JobMessage]:
        """Wait up to `timeout_s` for the next job; return it with the jobs available right after it,
        at most `limit` and at most a fair share of the queue (the pending jobs split among this fetch
        and the other runners' waiting fetches); empty if none arrived in time."""
        ...
