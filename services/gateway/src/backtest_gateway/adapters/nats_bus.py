"""NatsCommandBus: publish commands to BACKTEST_COMMANDS and SWEEP_COMMANDS, waiting for the ack."""

from __future__ import annotations

from backtest_core.contracts import (
    CancelBacktest,
    CancelSweep,
    Message,
    Stream,
    Subject,
    SubmitBacktest,
    SubmitSweep,
)
from backtest_messaging import MSG_ID_HEADER
from backtest_observability import inject_headers
from faststream.nats import NatsBroker


class NatsCommandBus:
    """JetStream publisher; `Nats-Msg-Id` = message_id so a retried publish is stored once.

    The current trace context (the HTTP request's span) goes along in the `traceparent` header.
    """

    def __init__(self, broker: NatsBroker, timeout_s: float) -> None:
        self._broker = broker
        self._timeout_s = timeout_s

    async def submit(self, command: SubmitBacktest) -> None:
        """Publish on `Subject.SUBMIT` and wait for the stream's ack."""
        await self._publish(command, Subject.SUBMIT)

    async def cancel(self, command: CancelBacktest) -> None:
        """Publish on `Subject.CANCEL` and wait for the stream's ack."""
        await self._publish(command, Subject.CANCEL)

    async def submit_sweep(self, command: SubmitSweep) -> None:
        """Publish on `Subject.SWEEP_SUBMIT` and wait for the stream's ack."""
        await self._publish(command, Subject.SWEEP_SUBMIT, Stream.SWEEP_COMMANDS)

    async def cancel_sweep(self, command: CancelSweep) -> None:
        """Publish on `Subject.SWEEP_CANCEL` and wait for the stream's ack."""
        await self._publish(command, Subject.SWEEP_CANCEL, Stream.SWEEP_COMMANDS)

    async def _publish(self, command: Message, subject: str, stream: Stream = Stream.COMMANDS) -> None:
        await self._broker.publish(
            command,
            subject,
            headers=inject_headers({MSG_ID_HEADER: command.message_id}),
            stream=stream.value,
            timeout=self._timeout_s,
        )
