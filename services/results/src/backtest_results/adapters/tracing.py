"""TracedBacktestWriter: the BacktestWriter with a "persistence" span around each stored event."""

from __future__ import annotations

from backtest_core.contracts import BacktestEvent
from opentelemetry.trace import Tracer

from backtest_results.documents import WriteOutcome
from backtest_results.ports import BacktestWriter

PERSISTENCE_SPAN = "persistence"


class TracedBacktestWriter:
    """Decorates a BacktestWriter; the span records the task, the event's seq and state, and the outcome."""

    def __init__(self, inner: BacktestWriter, tracer: Tracer) -> None:
        self._inner = inner
        self._tracer = tracer

    async def apply(self, event: BacktestEvent) -> WriteOutcome:
        """Store `event` inside a "persistence" span (an exception is recorded on the span and re-raised)."""
        with self._tracer.start_as_current_span(
            PERSISTENCE_SPAN,
            attributes={
                "backtest.task_id": event.task_id,
                "backtest.seq": event.seq,
                "backtest.state": str(event.state),
            },
        ) as span:
            outcome = await self._inner.apply(event)
            span.set_attribute("backtest.write_outcome", str(outcome))
            return outcome
