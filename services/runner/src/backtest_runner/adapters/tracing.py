"""Tracing decorators of the runner's ports: the job span continues the scheduler's trace from the
job message's `traceparent`; "data load" and "container run" spans are its children.

The job loop (service.py) and the executor stay free of OpenTelemetry: the composition root wraps
the job source, the executor, the candle source and the sandbox.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from backtest_core.contracts import RunBacktestJob, SandboxProgress
from backtest_core.model.candles import Candles
from backtest_messaging import MSG_ID_HEADER
from backtest_observability import extract_context
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, Tracer, get_current_span

from backtest_runner.executor import JobDone, JobExecutor, Switches
from backtest_runner.ports import CandleSource, JobMessage, JobSource, Sandbox
from backtest_runner.sandbox.docker_sandbox import SandboxRun
from backtest_runner.sandbox.limits import SandboxLimits
from backtest_runner.sandbox.outcome import KillSwitch, SandboxOutcome
from backtest_runner.sandbox.output import ParsedLine

JOB_SPAN = "run job"
DATA_LOAD_SPAN = "data load"
CONTAINER_RUN_SPAN = "container run"
BATCH_ENDED = "BatchEnded"  # the outcome of a batch whose every job ended with its final line
REMEMBERED_MAX = 1024  # contexts of fetched jobs not executed yet (skipped or dropped ones age out)


class JobTraceContexts:
    """The trace context each fetched job message carried, by message id (= the job's `message_id`)."""

    def __init__(self, capacity: int = REMEMBERED_MAX) -> None:
        self._capacity = capacity
        self._contexts: OrderedDict[str, Context] = OrderedDict()

    def remember(self, message_id: str, context: Context) -> None:
        """Keep `context` for `message_id`, forgetting the oldest beyond the capacity."""
        self._contexts[message_id] = context
        self._contexts.move_to_end(message_id)
        while len(self._contexts) > self._capacity:
            self._contexts.popitem(last=False)

    def take(self, message_id: str) -> Context | None:
        """Return and forget the context of `message_id`; None if none was remembered."""
        return self._contexts.pop(message_id, None)


class TracedJobSource:
    """Decorates a JobSource: remembers the trace context in each fetched message's headers."""

    def __init__(self, inner: JobSource, contexts: JobTraceContexts) -> None:
        self._inner = inner
        self._contexts = contexts

    async def fetch(self, limit: int, timeout_s: float) -> list[JobMessage]:
        """Return jobs as the inner source does, remembering each one's `traceparent`."""
        messages = await self._inner.fetch(limit, timeout_s)
        for message in messages:
            headers: dict[str, str] | None = getattr(message, "headers", None)
            if headers and MSG_ID_HEADER in headers:
                self._contexts.remember(headers[MSG_ID_HEADER], extract_context(headers))
        return messages


class TracedJobExecutor(JobExecutor):
    """A JobExecutor that runs each batch inside a "run job" span, child of the span that queued its
    first job and linked to the spans that queued the others (one job: the span of that job)."""

    def __init__(self, *, tracer: Tracer, contexts: JobTraceContexts, **executor: Any) -> None:
        super().__init__(**executor)
        self._tracer = tracer
        self._contexts = contexts

    async def execute_batch(
        self, jobs: Sequence[RunBacktestJob], switches: Switches, on_done: JobDone
    ) -> None:
        """Run the batch as JobExecutor does, inside one span for all its jobs."""
        contexts = [self._contexts.take(job.message_id) for job in jobs]
        links = [Link(get_current_span(c).get_span_context()) for c in contexts[1:] if c is not None]
        with self._tracer.start_as_current_span(
            JOB_SPAN,
            context=contexts[0],
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={"backtest.task_id": jobs[0].task_id, "backtest.batch_jobs": len(jobs)},
        ):
            await super().execute_batch(jobs, switches, on_done)


class TracedCandleSource:
    """Decorates a CandleSource: one "data load" span per symbol (runs in the worker thread)."""

    def __init__(self, inner: CandleSource, tracer: Tracer) -> None:
        self._inner = inner
        self._tracer = tracer

    def load(self, symbol: str, interval: str, start_ns: int | None, end_ns: int | None) -> Candles:
        """Return the bars as the inner source does, recording the symbol, interval and bar count."""
        with self._tracer.start_as_current_span(
            DATA_LOAD_SPAN, attributes={"backtest.symbol": symbol, "backtest.interval": interval}
        ) as span:
            candles = self._inner.load(symbol, interval, start_ns, end_ns)
            span.set_attribute("backtest.bars", len(candles))
            return candles


class TracedSandbox:
    """Decorates a Sandbox: each run inside a "container run" span recording the outcome's type."""

    def __init__(self, inner: Sandbox, tracer: Tracer) -> None:
        self._inner = inner
        self._tracer = tracer

    @property
    def limits(self) -> SandboxLimits:
        """Return the inner sandbox's limits."""
        return self._inner.limits

    def remove_orphans(self) -> int:
        """Remove what an earlier instance left behind; return how many."""
        return self._inner.remove_orphans()

    async def run(
        self, run: SandboxRun, on_progress: Callable[[SandboxProgress], None], kill_switch: KillSwitch
    ) -> SandboxOutcome:
        """Run in the inner sandbox inside a "container run" span."""
        with self._tracer.start_as_current_span(
            CONTAINER_RUN_SPAN, attributes={"backtest.task_id": run.task_id}
        ) as span:
            outcome = await self._inner.run(run, on_progress, kill_switch)
            span.set_attribute("backtest.outcome", type(outcome).__name__)
            return outcome

    async def run_batch(
        self, run: SandboxRun, jobs: int, on_line: Callable[[ParsedLine], None], kill_switch: KillSwitch
    ) -> SandboxOutcome | None:
        """Run a batch in the inner sandbox inside a "container run" span."""
        with self._tracer.start_as_current_span(
            CONTAINER_RUN_SPAN, attributes={"backtest.task_id": run.task_id, "backtest.batch_jobs": jobs}
        ) as span:
            outcome = await self._inner.run_batch(run, jobs, on_line, kill_switch)
            ended = BATCH_ENDED if outcome is None else type(outcome).__name__
            span.set_attribute("backtest.outcome", ended)
            return outcome
