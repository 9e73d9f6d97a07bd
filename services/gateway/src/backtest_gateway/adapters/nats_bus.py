"""NatsCommandBus: publish commands to BACKTEST_COMMANDS through FastStream, waiting for the ack."""

from __future__ import annotations

from backtest_core.contracts import CancelBacktest, Message, Stream, Subject, SubmitBacktest
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

    async def _publish(self, command: Message, subject: str) -> None:
        await self._broker.publish(
            command,
            subject,
            headers=inject_headers({MSG_ID_HEADER: command.message_id}),
            stream=Stream.COMMANDS.value,
            timeout=self._timeout_s,
        )
