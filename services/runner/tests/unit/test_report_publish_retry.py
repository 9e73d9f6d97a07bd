"""A report published while its clustered stream elects a leader is retried, not lost."""

from __future__ import annotations

from typing import Any

import pytest
from backtest_core.contracts import RunStarted
from backtest_runner.adapters import nats_jetstream
from backtest_runner.adapters.nats_jetstream import JetStreamReportPublisher
from nats.js.errors import NoStreamResponseError


class ElectingStream:
    """A JetStream context whose first `failures` publishes answer like a stream without a leader."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.stored: list[tuple[str, bytes, dict[str, str]]] = []

    async def publish(self, subject: str, payload: bytes, **kwargs: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise NoStreamResponseError
        self.stored.append((subject, payload, kwargs["headers"]))


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nats_jetstream, "ELECTION_RETRY_PAUSE_S", 0.0)


async def test_a_report_is_published_once_the_stream_has_a_leader_again() -> None:
    stream = ElectingStream(failures=3)
    publisher = JetStreamReportPublisher(stream, max_bytes=1_000_000)  # type: ignore[arg-type]
    report = RunStarted(task_id="a" * 32, attempt=1, runner_id="r1")

    await publisher.publish(report)

    [(subject, payload, headers)] = stream.stored
    assert subject.endswith("a" * 32)
    assert headers["Nats-Msg-Id"] == report.message_id  # the same id on every try: JetStream de-duplicates
    assert RunStarted.model_validate_json(payload) == report


async def test_a_stream_without_a_leader_past_the_retry_window_raises() -> None:
    stream = ElectingStream(failures=10**9)
    publisher = JetStreamReportPublisher(stream, max_bytes=1_000_000, retry_for_s=0.0)  # type: ignore[arg-type]

    with pytest.raises(NoStreamResponseError):
        await publisher.publish(RunStarted(task_id="b" * 32, attempt=1, runner_id="r1"))
    assert stream.stored == []
