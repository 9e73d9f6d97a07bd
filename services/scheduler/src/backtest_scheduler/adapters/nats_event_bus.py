"""EventBus and DeadJobs on NATS JetStream through the FastStream broker."""

from __future__ import annotations

import contextlib

from backtest_core.contracts import (
    BacktestEvent,
    CancelRun,
    DeadLetteredJob,
    RunBacktestJob,
    Stream,
    Subject,
)
from backtest_core.model.trade_log import PACKED
from backtest_messaging import event_headers, publish_headers
from faststream.nats import NatsBroker
from nats.js.errors import NotFoundError
from pydantic import BaseModel


class NatsEventBus:
    """Publishes to the platform's streams with `Nats-Msg-Id` = message_id and waits for each ack."""

    def __init__(self, broker: NatsBroker, timeout_s: float = 5.0) -> None:
        self._broker = broker
        self._timeout_s = timeout_s

    async def _publish(
        self, message: BaseModel, headers: dict[str, str], subject: str, stream: Stream
    ) -> None:
        await self._broker.publish(
            message.model_dump_json(context=PACKED).encode(),  # a result's trades go packed
            subject,
            headers=headers,
            stream=stream.value,
            timeout=self._timeout_s,
        )

    async def publish_event(self, event: BacktestEvent) -> None:
        await self._publish(event, event_headers(event), Subject.event(event.task_id), Stream.EVENTS)

    async def enqueue_job(self, job: RunBacktestJob) -> None:
        await self._publish(job, publish_headers(job.message_id), Subject.JOB_RUN, Stream.JOBS)

    async def publish_dead_letter(self, dead: DeadLetteredJob) -> None:
        await self._publish(dead, publish_headers(dead.message_id), Subject.DEAD_JOB, Stream.DEAD)

    async def broadcast_cancel(self, cancel: CancelRun) -> None:
        await self._broker.publish(cancel, Subject.CANCEL_RUN)


class NatsDeadJobs:
    """Reads and removes a job that JetStream stopped delivering from the BACKTEST_JOBS work queue."""

    def __init__(self, broker: NatsBroker) -> None:
        self._broker = broker

    async def read(self, stream_seq: int) -> RunBacktestJob | None:
        try:
            raw = await self._broker.connection.jetstream().get_msg(Stream.JOBS.value, stream_seq)
        except NotFoundError:
            return None
        return RunBacktestJob.model_validate_json(raw.data or b"")

    async def remove(self, stream_seq: int) -> None:
        # Gone already if another scheduler removed it meanwhile; dead-lettering is idempotent by task state.
        with contextlib.suppress(NotFoundError):
            await self._broker.connection.jetstream().delete_msg(Stream.JOBS.value, stream_seq)
