"""FastStream handlers: read the message, call the service, nothing else.

The sweeper follows every backtest event but reads whole only the end of a trial's task or of a
walk-forward fold's test run: a SUCCESS event's envelope travels in a header, so a result of a task of
no sweep is never parsed. It follows the sweep events too, for the end of a walk-forward fold's sweep.
A command that fails validation is dropped with a log line (the gateway validated it; nothing is
waiting on it); any other error naks the message with a delay, so it comes back.
"""

from __future__ import annotations

import json
import logging

from backtest_core.contracts import (
    SWEEPER_COMMANDS_CONSUMER,
    SWEEPER_EVENTS_CONSUMER,
    SWEEPER_SWEEP_EVENTS_CONSUMER,
    TERMINAL_SWEEP_STATES,
    BacktestCancelled,
    BacktestEvent,
    BacktestFailed,
    BacktestSucceeded,
    CancelSweep,
    CancelWalkForward,
    Stream,
    Subject,
    SubmitSweep,
    SubmitWalkForward,
    SweepCommand,
    SweepEvent,
)
from backtest_messaging.event_headers import EVENT_ENVELOPE_HEADER
from faststream import AckPolicy
from faststream.exceptions import NackMessage
from faststream.nats import ConsumerConfig, DeliverPolicy, JStream, NatsRouter, PullSub
from faststream.nats.annotations import NatsMessage
from pydantic import TypeAdapter, ValidationError

from backtest_sweeper.plan import TrialEnd
from backtest_sweeper.service import SweeperService
from backtest_sweeper.walkforward_service import WalkForwardService

log = logging.getLogger(__name__)

COMMANDS: TypeAdapter[SweepCommand] = TypeAdapter(SweepCommand)
EVENTS: TypeAdapter[BacktestEvent] = TypeAdapter(BacktestEvent)
SWEEP_EVENT: TypeAdapter[SweepEvent] = TypeAdapter(SweepEvent)


async def _dispatch(service: SweeperService, walkforwards: WalkForwardService, command: SweepCommand) -> None:
    if isinstance(command, SubmitSweep):
        await service.submit(command)
    elif isinstance(command, CancelSweep):
        await service.cancel(command)
    elif isinstance(command, SubmitWalkForward):
        await walkforwards.submit(command)
    elif isinstance(command, CancelWalkForward):
        await walkforwards.cancel(command)


def build_router(
    service: SweeperService, walkforwards: WalkForwardService, *, redelivery_delay_s: float = 2.0
) -> NatsRouter:
    """Return the router of the sweeper's three durable subscriptions, bound to the two services."""
    router = NatsRouter()

    @router.subscriber(
        Subject.SWEEP_COMMANDS_ALL,
        stream=JStream(Stream.SWEEP_COMMANDS.value, declare=False),
        durable=SWEEPER_COMMANDS_CONSUMER,
        pull_sub=PullSub(batch_size=16, timeout=1.0),
        config=ConsumerConfig(ack_wait=60.0, max_deliver=-1),
        ack_policy=AckPolicy.REJECT_ON_ERROR,
    )
    async def on_command(message: NatsMessage) -> None:
        try:
            command = COMMANDS.validate_json(message.body)
        except ValidationError as error:
            log.error("dropped an unreadable sweep command: %s", error)
            return
        try:
            await _dispatch(service, walkforwards, command)
        except Exception as error:
            log.exception(
                "sweep command %s failed; it returns in %.1f s", command.message_id, redelivery_delay_s
            )
            raise NackMessage(delay=redelivery_delay_s) from error

    @router.subscriber(
        Subject.EVENTS_ALL,
        stream=JStream(Stream.EVENTS.value, declare=False),
        durable=SWEEPER_EVENTS_CONSUMER,
        pull_sub=PullSub(batch_size=64, timeout=1.0),
        # The durable exists before the first trial is sent, so only new events matter.
        config=ConsumerConfig(ack_wait=60.0, max_deliver=-1, deliver_policy=DeliverPolicy.NEW),
        ack_policy=AckPolicy.REJECT_ON_ERROR,
    )
    async def on_event(message: NatsMessage) -> None:
        try:
            end = await _task_end(service, walkforwards, message)
            if end is not None:
                if await service.is_trial(end.task_id):
                    await service.trial_ended(end.task_id, end)
                else:
                    await walkforwards.test_ended(end.task_id, end)
        except ValidationError as error:
            log.error("dropped an unreadable backtest event: %s", error)
        except Exception as error:
            log.exception("a trial's end failed to store; it returns in %.1f s", redelivery_delay_s)
            raise NackMessage(delay=redelivery_delay_s) from error

    @router.subscriber(
        Subject.SWEEP_EVENTS_ALL,
        stream=JStream(Stream.SWEEP_EVENTS.value, declare=False),
        durable=SWEEPER_SWEEP_EVENTS_CONSUMER,
        pull_sub=PullSub(batch_size=64, timeout=1.0),
        config=ConsumerConfig(ack_wait=60.0, max_deliver=-1, deliver_policy=DeliverPolicy.NEW),
        ack_policy=AckPolicy.REJECT_ON_ERROR,
    )
    async def on_sweep_event(message: NatsMessage) -> None:
        try:
            event = SWEEP_EVENT.validate_json(message.body)
        except ValidationError as error:
            log.error("dropped an unreadable sweep event: %s", error)
            return
        if event.state not in TERMINAL_SWEEP_STATES:
            return
        try:
            await walkforwards.sweep_ended(event.sweep_id)
        except Exception as error:
            log.exception("a fold sweep's end failed to store; it returns in %.1f s", redelivery_delay_s)
            raise NackMessage(delay=redelivery_delay_s) from error

    return router


async def _task_end(
    service: SweeperService, walkforwards: WalkForwardService, message: NatsMessage
) -> TrialEnd | None:
    """The event if it ends a trial's task or a fold's test run, else None (a SUCCESS of another task is
    never parsed)."""
    envelope = (message.headers or {}).get(EVENT_ENVELOPE_HEADER)
    if envelope is not None:
        task_id = json.loads(envelope)["task_id"]
        if not (await service.is_trial(task_id) or await walkforwards.is_test_task(task_id)):
            return None
        succeeded = EVENTS.validate_json(message.body)
        return succeeded if isinstance(succeeded, BacktestSucceeded) else None
    event = EVENTS.validate_json(message.body)  # SUCCESS events always carry the envelope header
    return event if isinstance(event, BacktestFailed | BacktestCancelled) else None
