"""NatsEventFeed: one task's events from BACKTEST_EVENTS, replayed from the start, then followed live."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from anyio import to_thread
from backtest_core.contracts import BacktestEvent, Stream, Subject
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError
from pydantic import TypeAdapter, ValidationError

from backtest_gateway.ports import FeedEvent, SucceededHeader
from backtest_gateway.result_pages import HEAVY_WORK

_EVENT = TypeAdapter[BacktestEvent](BacktestEvent)
OFF_LOOP_BYTES = 64 * 1024  # larger events are validated in a worker thread, not on the event loop


def _large_event(data: bytes) -> FeedEvent:
    """Return a large SUCCESS event as its header (the result is skipped, ~4 ms for 10 MiB); others whole."""
    try:
        header = SucceededHeader.model_validate_json(data)
    except ValidationError:  # not a SUCCESS event: decode it whole
        return _EVENT.validate_json(data)
    return header.model_copy(update={"raw": data})


class NatsEventFeed:
    """An ordered ephemeral consumer per follower, filtered on `Subject.event(task_id)`, deliver ALL.

    `jetstream` is called at first use, so the feed can be built before the broker connects.
    """

    def __init__(self, jetstream: Callable[[], JetStreamContext]) -> None:
        self._jetstream = jetstream

    async def has_events(self, task_id: str) -> bool:
        """Ask the stream how many messages the task subject holds (not the last one: it can be a result)."""
        try:
            info = await self._jetstream().stream_info(
                Stream.EVENTS.value, subjects_filter=Subject.event(task_id)
            )
        except NotFoundError:
            return False
        return bool(info.state.subjects and info.state.subjects.get(Subject.event(task_id)))

    async def events(self, task_id: str) -> AsyncGenerator[FeedEvent, None]:
        """Yield each stored and then each new event of the task, in stream order."""
        subscription = await self._jetstream().subscribe(
            Subject.event(task_id),
            stream=Stream.EVENTS.value,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
        )
        try:
            async for msg in subscription.messages:
                if len(msg.data) > OFF_LOOP_BYTES:  # a result: read only its header, in a worker thread
                    yield await to_thread.run_sync(_large_event, msg.data, limiter=HEAVY_WORK)
                else:
                    yield _EVENT.validate_json(msg.data)
        finally:
            await subscription.unsubscribe()
