"""The gateway's event feed on real NATS JetStream: a large SUCCESS event is read without its result."""

from __future__ import annotations

import nats
import pytest
from backtest_core.contracts import (
    BacktestAccepted,
    BacktestProgressed,
    BacktestSucceeded,
    Stream,
    Subject,
    new_id,
)
from backtest_core.model.config import BacktestConfig
from backtest_core.model.trade_log import PACKED
from backtest_gateway.adapters.nats_events import OFF_LOOP_BYTES, NatsEventFeed
from backtest_gateway.ports import SucceededHeader
from backtest_messaging import declare_streams, event_headers
from backtest_testinfra import make_large_result

pytestmark = pytest.mark.integration

CONFIG = BacktestConfig(strategy="sma_cross", symbols=["BTCUSD"])


async def test_a_large_success_arrives_as_its_envelope_and_the_result_is_never_received(nats_url):
    connection = await nats.connect(nats_url)
    js = connection.jetstream()
    await declare_streams(js, [Stream.EVENTS])
    task_id = new_id()
    result = make_large_result(CONFIG, trades=20_000)
    published = [
        BacktestAccepted(task_id=task_id, user_id="alice", seq=1, config=CONFIG, cache_key="k"),
        BacktestProgressed(task_id=task_id, user_id="alice", seq=2, fraction=0.5, stage="signals"),
        BacktestSucceeded(task_id=task_id, user_id="alice", seq=3, result=result, cached_from="f" * 32),
    ]
    bodies = [event.model_dump_json(context=PACKED).encode() for event in published]
    assert len(bodies[2]) > 10 * OFF_LOOP_BYTES  # about 1.3 MB: a result the feed must not receive
    for event, body in zip(published, bodies, strict=True):
        await js.publish(
            Subject.event(task_id), body, stream=Stream.EVENTS.value, headers=event_headers(event)
        )
    try:
        received_before = connection.stats["in_bytes"]
        events = NatsEventFeed(lambda: js).events(task_id)
        got = [await anext(events) for _ in published]
        received = connection.stats["in_bytes"] - received_before
        await events.aclose()

        assert got[:2] == published[:2]  # small events whole, read by their stream sequence
        header = got[2]
        assert isinstance(header, SucceededHeader)
        expected_envelope = published[2].model_dump(mode="json", exclude={"result"})
        assert header.model_dump(mode="json") == expected_envelope
        assert received < 2 * OFF_LOOP_BYTES  # the two small bodies and the headers, not the 1.3 MB result

        whole = BacktestSucceeded.model_validate_json(await header.whole_event())  # the fallback reads it
        assert whole.result.metrics == result.metrics and len(whole.result.trades) == 20_000
    finally:
        await connection.drain()


async def test_a_large_success_published_without_an_envelope_is_still_read_as_its_header(nats_url):
    """Events stored before the envelope header existed (or by another publisher) keep working."""
    connection = await nats.connect(nats_url)
    js = connection.jetstream()
    await declare_streams(js, [Stream.EVENTS])
    task_id = new_id()
    event = BacktestSucceeded(task_id=task_id, user_id="bob", seq=1, result=make_large_result(CONFIG, 5_000))
    body = event.model_dump_json(context=PACKED).encode()
    await js.publish(Subject.event(task_id), body, stream=Stream.EVENTS.value)
    try:
        events = NatsEventFeed(lambda: js).events(task_id)
        header = await anext(events)
        await events.aclose()

        assert isinstance(header, SucceededHeader)
        assert (header.task_id, header.seq, header.message_id) == (task_id, 1, event.message_id)
        assert await header.whole_event() == body
    finally:
        await connection.drain()
