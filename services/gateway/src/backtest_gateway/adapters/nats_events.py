"""NatsEventFeed: one task's events from BACKTEST_EVENTS, replayed from the start, then followed live.

The feed consumes headers only: a SUCCESS event's result (up to MAX_RESULT_BYTES) is never delivered to
the gateway's event loop once per stream. Its envelope comes from the `Backtest-Envelope` header
(backtest_messaging.event_headers); the result from the task store (or, failing that, the stream). A
small event's body is read from the stream by its sequence number.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from anyio import to_thread
from backtest_core.contracts import BacktestEvent, Stream, Subject
from backtest_messaging import EVENT_ENVELOPE_HEADER, MSG_SIZE_HEADER
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError
from pydantic import TypeAdapter, ValidationError

from backtest_gateway.ports import FeedEvent, SucceededHeader
from backtest_gateway.result_pages import HEAVY_WORK

_EVENT = TypeAdapter[BacktestEvent](BacktestEvent)
OFF_LOOP_BYTES = 64 * 1024  # larger events are never read on the event loop when avoidable


def _large_event(data: bytes) -> FeedEvent:
    """Return a large SUCCESS event as its header (the result is skipped, ~4 ms for 10 MiB); others whole."""
    try:
        header = SucceededHeader.model_validate_json(data)
    except ValidationError:  # not a SUCCESS event: decode it whole
        return _EVENT.validate_json(data)
    return header.reading_whole_event_from(lambda: _constant(data))


async def _constant(data: bytes) -> bytes:
    return data


class NatsEventFeed:
    """An ordered ephemeral headers-only consumer per follower, on `Subject.event(task_id)`, deliver ALL.

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
            headers_only=True,
        )
        try:
            async for msg in subscription.messages:
                yield await self._event(msg)
        finally:
            await subscription.unsubscribe()

    async def _event(self, msg: Msg) -> FeedEvent:
        headers = msg.headers or {}
        stream_seq = msg.metadata.sequence.stream
        envelope = headers.get(EVENT_ENVELOPE_HEADER)
        if envelope is not None and int(headers.get(MSG_SIZE_HEADER, "0")) > OFF_LOOP_BYTES:
            header = SucceededHeader.model_validate_json(envelope)
            return header.reading_whole_event_from(lambda: self._body(stream_seq))
        data = await self._body(stream_seq)
        if len(data) > OFF_LOOP_BYTES:  # published without an envelope: read only its header, off the loop
            return await to_thread.run_sync(_large_event, data, limiter=HEAVY_WORK)
        return _EVENT.validate_json(data)

    async def _body(self, stream_seq: int) -> bytes:
        message = await self._jetstream().get_msg(Stream.EVENTS.value, stream_seq)
        return message.data or b""
