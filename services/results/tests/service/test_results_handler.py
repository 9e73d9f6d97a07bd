"""The results handler on the in-memory broker: every event reaches the writer; stale ones change nothing."""

import pytest
from backtest_core.contracts import Stream, Subject
from backtest_results.documents import WriteOutcome
from backtest_results.handlers import build_router
from faststream.nats import NatsBroker, TestNatsBroker

from ..conftest import InMemoryBacktestWriter, lifecycle

pytestmark = pytest.mark.service


async def publish_all(events: list, writer: InMemoryBacktestWriter) -> None:  # type: ignore[type-arg]
    broker = NatsBroker()
    broker.include_router(build_router(writer, redelivery_delay_s=0.0))
    async with TestNatsBroker(broker) as test_broker:
        for event in events:
            await test_broker.publish(event, Subject.event(event.task_id), stream=Stream.EVENTS.value)


async def test_a_whole_lifecycle_is_stored_as_success() -> None:
    writer = InMemoryBacktestWriter()
    events = lifecycle("c" * 32)

    await publish_all(events, writer)

    document = writer.documents["c" * 32]
    assert (document["state"], document["seq"]) == ("SUCCESS", 5)
    assert document["result"]["metrics"]["trade_count"] == 100
    assert writer.outcomes == [WriteOutcome.APPLIED] * 5


async def test_stale_seq_and_duplicates_are_ignored() -> None:
    writer = InMemoryBacktestWriter()
    accepted, started, early, late, _ = lifecycle("d" * 32)

    await publish_all([accepted, started, late, early, late, started], writer)

    document = writer.documents["d" * 32]
    assert (document["state"], document["seq"], document["progress"]["fraction"]) == ("PROGRESS", 4, 0.9)
    assert writer.outcomes == [WriteOutcome.APPLIED] * 3 + [WriteOutcome.STALE] * 3


async def test_events_of_different_tasks_go_to_different_documents() -> None:
    writer = InMemoryBacktestWriter()
    one, two = lifecycle("e" * 32), lifecycle("f" * 32)

    await publish_all([one[0], two[0], one[1]], writer)

    assert writer.documents["e" * 32]["state"] == "STARTED"
    assert writer.documents["f" * 32]["state"] == "PENDING"


async def test_a_sweep_chunks_events_are_left_to_the_sweeper_and_write_no_document() -> None:
    writer = InMemoryBacktestWriter()
    events = [event.model_copy(update={"chunk": True}) for event in lifecycle("d" * 32)]

    await publish_all(events, writer)

    assert writer.documents == {}
