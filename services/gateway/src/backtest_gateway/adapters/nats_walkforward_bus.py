"""NatsWalkForwardBus: publish walk-forward commands to SWEEP_COMMANDS, waiting for the ack."""

from __future__ import annotations

from backtest_core.contracts import CancelWalkForward, Message, Stream, Subject, SubmitWalkForward
from backtest_messaging import MSG_ID_HEADER
from backtest_observability import inject_headers
from faststream.nats import NatsBroker


class NatsWalkForwardBus:
    """JetStream publisher; `Nats-Msg-Id` = message_id so a retried publish is stored once."""

    def __init__(self, broker: NatsBroker, timeout_s: float) -> None:
        self._broker = broker
        self._timeout_s = timeout_s

    async def submit(self, command: SubmitWalkForward) -> None:
        """Publish on `Subject.WALKFORWARD_SUBMIT` and wait for the stream's ack."""
        await self._publish(command, Subject.WALKFORWARD_SUBMIT)

    async def cancel(self, command: CancelWalkForward) -> None:
        """Publish on `Subject.WALKFORWARD_CANCEL` and wait for the stream's ack."""
        await self._publish(command, Subject.WALKFORWARD_CANCEL)

    async def _publish(self, command: Message, subject: str) -> None:
        await self._broker.publish(
            command,
            subject,
            headers=inject_headers({MSG_ID_HEADER: command.message_id}),
            stream=Stream.SWEEP_COMMANDS.value,
            timeout=self._timeout_s,
        )
