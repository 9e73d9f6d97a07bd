"""NatsSweepBus: the sweeper's publishes, each with `Nats-Msg-Id` = message_id, waiting for the ack."""

from __future__ import annotations

from backtest_core.contracts import (
    CancelBacktest,
    CancelSweep,
    Message,
    Stream,
    Subject,
    SubmitBacktest,
    SubmitSweep,
    SweepEvent,
    WalkForwardEvent,
)
from backtest_messaging import publish_headers
from backtest_observability import inject_headers
from faststream.nats import NatsBroker


class NatsSweepBus:
    """Trial and test-run commands to BACKTEST_COMMANDS, sweep events to SWEEP_EVENTS, a walk-forward's
    fold sweeps to SWEEP_COMMANDS and its events to WALKFORWARD_EVENTS."""

    def __init__(self, broker: NatsBroker, timeout_s: float = 5.0) -> None:
        self._broker = broker
        self._timeout_s = timeout_s

    async def submit(self, command: SubmitBacktest) -> None:
        await self._publish(command, Subject.SUBMIT, Stream.COMMANDS)

    async def cancel(self, command: CancelBacktest) -> None:
        await self._publish(command, Subject.CANCEL, Stream.COMMANDS)

    async def publish(self, event: SweepEvent) -> None:
        await self._publish(event, Subject.sweep_event(event.sweep_id), Stream.SWEEP_EVENTS)

    async def publish_walkforward(self, event: WalkForwardEvent) -> None:
        await self._publish(event, Subject.walkforward_event(event.walkforward_id), Stream.WALKFORWARD_EVENTS)

    async def submit_sweep(self, command: SubmitSweep) -> None:
        await self._publish(command, Subject.SWEEP_SUBMIT, Stream.SWEEP_COMMANDS)

    async def cancel_sweep(self, command: CancelSweep) -> None:
        await self._publish(command, Subject.SWEEP_CANCEL, Stream.SWEEP_COMMANDS)

    async def _publish(self, message: Message, subject: str, stream: Stream) -> None:
        await self._broker.publish(
            message.model_dump_json().encode(),
            subject,
            headers=inject_headers(publish_headers(message.message_id)),
            stream=stream.value,
            timeout=self._timeout_s,
        )
