"""FastStream handlers: parse the message, call the service, nothing else.

A command or run report that fails validation is handed to the service as it came, which ends its task
as FAILURE naming the invalid fields (never a task waiting forever). Any other error (NATS, MongoDB,
a lost compare-and-set race) naks the message with a delay, so it comes back.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

from backtest_core.contracts import (
    SCHEDULER_ADVISORIES_CONSUMER,
    SCHEDULER_COMMANDS_CONSUMER,
    SCHEDULER_RUNS_CONSUMER,
    Command,
    RunReport,
    Stream,
    Subject,
    SubmitBacktest,
)
from backtest_core.model.config import Frozen
from faststream import AckPolicy
from faststream.exceptions import NackMessage
from faststream.nats import ConsumerConfig, JStream, NatsRouter, PullSub
from faststream.nats.annotations import NatsMessage
from pydantic import ConfigDict, TypeAdapter, ValidationError

from backtest_scheduler.service import SchedulerService

log = logging.getLogger(__name__)

COMMANDS: TypeAdapter[Command] = TypeAdapter(Command)
REPORTS: TypeAdapter[RunReport] = TypeAdapter(RunReport)
Handler = TypeVar("Handler", bound=Callable[..., Awaitable[None]])


class MaxDeliveriesAdvisory(Frozen):
    """The part of JetStream's io.nats.jetstream.advisory.v1.max_deliver advisory the scheduler reads."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    stream: str
    consumer: str
    stream_seq: int
    deliveries: int


async def _nack_on_error(work: Awaitable[None], delay_s: float) -> None:
    try:
        await work
    except Exception as error:
        log.exception("handling failed; the message returns in %.1f s", delay_s)
        raise NackMessage(delay=delay_s) from error


def build_router(service: SchedulerService, *, redelivery_delay_s: float = 2.0) -> NatsRouter:
    """Return the router of the scheduler's three subscriptions, bound to `service`."""
    router = NatsRouter()

    def durable(subject: str, stream: Stream, name: str, batch: int) -> Callable[[Handler], Handler]:
        """A durable pull subscription on a stream: a failed message returns after the delay."""
        subscribe = router.subscriber(
            subject,
            stream=JStream(stream.value, declare=False),
            durable=name,
            pull_sub=PullSub(batch_size=batch, timeout=1.0),
            config=ConsumerConfig(ack_wait=30.0, max_deliver=-1),
            ack_policy=AckPolicy.REJECT_ON_ERROR,
        )
        return cast(Callable[[Handler], Handler], subscribe)

    @durable(Subject.COMMANDS_ALL, Stream.COMMANDS, SCHEDULER_COMMANDS_CONSUMER, batch=16)
    async def on_command(message: NatsMessage) -> None:
        try:
            command = COMMANDS.validate_json(message.body)
        except ValidationError as error:
            return await _nack_on_error(service.unreadable_command(message.body, error), redelivery_delay_s)
        work = service.submit(command) if isinstance(command, SubmitBacktest) else service.cancel(command)
        await _nack_on_error(work, redelivery_delay_s)

    @durable(Subject.RUNS_ALL, Stream.RUNS, SCHEDULER_RUNS_CONSUMER, batch=64)
    async def on_run_report(message: NatsMessage) -> None:
        try:
            report = REPORTS.validate_json(message.body)
        except ValidationError as error:
            return await _nack_on_error(service.unreadable_report(message.body, error), redelivery_delay_s)
        await _nack_on_error(service.report(report), redelivery_delay_s)

    @durable(Subject.JOBS_MAX_DELIVERIES_ADVISORY, Stream.ADVISORIES, SCHEDULER_ADVISORIES_CONSUMER, batch=16)
    async def on_max_deliveries(advisory: MaxDeliveriesAdvisory) -> None:
        await _nack_on_error(
            service.max_deliveries(advisory.stream_seq, advisory.deliveries), redelivery_delay_s
        )

    return router
