"""TracedEventBus: the EventBus with a "queueing" span around putting a job on the runners' work queue."""

from __future__ import annotations

from backtest_core.contracts import BacktestEvent, CancelRun, DeadLetteredJob, RunBacktestJob
from opentelemetry.trace import SpanKind, Tracer

from backtest_scheduler.ports import EventBus

QUEUEING_SPAN = "queueing"


class TracedEventBus:
    """Decorates an EventBus; the job's publish (and its `traceparent` header) happens inside "queueing"."""

    def __init__(self, inner: EventBus, tracer: Tracer) -> None:
        self._inner = inner
        self._tracer = tracer

    async def publish_event(self, event: BacktestEvent) -> None:
        """Publish a task event durably."""
        await self._inner.publish_event(event)

    async def enqueue_job(self, job: RunBacktestJob) -> None:
        """Put a job on the work queue inside a "queueing" span carrying the task id and attempt."""
        with self._tracer.start_as_current_span(
            QUEUEING_SPAN,
            kind=SpanKind.PRODUCER,
            attributes={"backtest.task_id": job.task_id, "backtest.attempt": job.attempt},
        ):
            await self._inner.enqueue_job(job)

    async def publish_dead_letter(self, dead: DeadLetteredJob) -> None:
        """Store a dead-lettered job durably."""
        await self._inner.publish_dead_letter(dead)

    async def broadcast_cancel(self, cancel: CancelRun) -> None:
        """Tell every runner to stop this task's container."""
        await self._inner.broadcast_cancel(cancel)
