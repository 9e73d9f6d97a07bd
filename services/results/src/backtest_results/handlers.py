"""The FastStream handler: validate the event, hand it to the writer, nothing else.

A body that fails validation is rejected (terminated: redelivering it cannot help). Any other error
(MongoDB unreachable, no majority) naks the event with a delay, so JetStream delivers it again.
"""

from __future__ import annotations

import logging

from backtest_core.contracts import RESULTS_EVENTS_CONSUMER, BacktestEvent, Stream, Subject
from faststream import AckPolicy
from faststream.exceptions import NackMessage
from faststream.nats import ConsumerConfig, DeliverPolicy, JStream, NatsRouter, PullSub

from backtest_results.documents import WriteOutcome
from backtest_results.ports import BacktestWriter

log = logging.getLogger(__name__)


def build_router(writer: BacktestWriter, *, redelivery_delay_s: float = 2.0) -> NatsRouter:
    """Return the router of the durable `results-writer` consumer of BACKTEST_EVENTS, bound to `writer`."""
    router = NatsRouter()

    @router.subscriber(
        Subject.EVENTS_ALL,
        stream=JStream(Stream.EVENTS.value, declare=False),
        durable=RESULTS_EVENTS_CONSUMER,
        pull_sub=PullSub(batch_size=64, timeout=1.0),
        config=ConsumerConfig(ack_wait=30.0, max_deliver=-1, deliver_policy=DeliverPolicy.ALL),
        ack_policy=AckPolicy.REJECT_ON_ERROR,
    )
    async def on_event(event: BacktestEvent) -> None:
        if event.chunk:
            return  # a sweep chunk's events are the sweeper's: its trials are stored there, not here
        try:
            outcome = await writer.apply(event)
        except Exception as error:
            log.exception("storing event seq %d of task %s failed", event.seq, event.task_id)
            raise NackMessage(delay=redelivery_delay_s) from error
        if outcome is WriteOutcome.STALE:
            log.info("ignored stale event seq %d of task %s", event.seq, event.task_id)

    return router
