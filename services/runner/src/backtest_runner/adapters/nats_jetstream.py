"""NATS JetStream adapters: the job work queue, report publishing, cancel listening."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import nats.errors
from backtest_core.contracts import (
    MAX_RESULT_BYTES,
    RUNNER_JOBS_ACK_WAIT_S,
    RUNNER_JOBS_CONSUMER,
    RUNNER_JOBS_MAX_DELIVER,
    CancelRun,
    Stream,
    Subject,
)
from backtest_core.model.trade_log import PACKED
from backtest_messaging import ELECTION_ERRORS, MSG_ID_HEADER
from backtest_observability import inject_headers
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from pydantic import ValidationError

from backtest_runner.batching import fair_share
from backtest_runner.ports import JobMessage, ReportTooLarge, RunReport

log = logging.getLogger(__name__)

# A publish answered with one of backtest_messaging.ELECTION_ERRORS is retried; the report's Nats-Msg-Id
# makes a retry of a stored report a no-op.
ELECTION_RETRY_PAUSE_S = 0.5


def runner_consumer_config(max_ack_pending: int) -> ConsumerConfig:
    """Return the shared durable pull consumer's configuration."""
    return ConsumerConfig(
        durable_name=RUNNER_JOBS_CONSUMER,
        name=RUNNER_JOBS_CONSUMER,
        filter_subject=Subject.JOB_RUN,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=RUNNER_JOBS_ACK_WAIT_S,
        max_deliver=RUNNER_JOBS_MAX_DELIVER,
        max_ack_pending=max_ack_pending,
    )


class JetStreamJobSource:
    """The `runner` durable pull consumer on BACKTEST_JOBS, shared by every runner."""

    def __init__(self, subscription: JetStreamContext.PullSubscription) -> None:
        self._subscription = subscription

    @classmethod
    async def bind(cls, js: JetStreamContext, max_ack_pending: int) -> JetStreamJobSource:
        """Create the consumer if missing (an existing one is used as it is) and subscribe to it."""
        subscription = await js.pull_subscribe(
            Subject.JOB_RUN,
            durable=RUNNER_JOBS_CONSUMER,
            stream=Stream.JOBS,
            config=runner_consumer_config(max_ack_pending),
        )
        return cls(subscription)

    async def fetch(self, limit: int, timeout_s: float) -> list[JobMessage]:
        """Return the next job and those available right after it, at most `limit` and at most a fair
        share (batching.fair_share) of the consumer's pending jobs; empty after `timeout_s` seconds."""
        batch = 1
        if limit > 1:
            try:
                info = await self._subscription.consumer_info()
                batch = fair_share(info.num_pending or 0, info.num_waiting or 0, limit)
            except nats.errors.Error as exc:  # e.g. a timeout while the cluster elects a leader
                log.warning("reading the job consumer's pending count failed, fetching one: %r", exc)
        try:
            messages: list[JobMessage] = list(await self._subscription.fetch(batch, timeout=timeout_s))
        except nats.errors.TimeoutError:
            return []
        return messages

    async def close(self) -> None:
        """Stop the subscription (the durable consumer stays)."""
        await self._subscription.unsubscribe()


class JetStreamReportPublisher:
    """Publish run reports on `Subject.run(task_id)` with `Nats-Msg-Id` for de-duplication.

    The current trace context (the job's span) goes along in the `traceparent` header. A report whose
    JSON is over `max_bytes` (MAX_RESULT_BYTES, lowered to what the connected server accepts) raises
    ReportTooLarge before anything is sent. While the stream has no leader (a cluster node died) the
    publish is retried for up to `retry_for_s` seconds before the error is raised.
    """

    def __init__(
        self, js: JetStreamContext, *, max_bytes: int, timeout_s: float = 10.0, retry_for_s: float = 60.0
    ) -> None:
        self._js = js
        self._max_bytes = max_bytes
        self._timeout_s = timeout_s
        self._retry_for_s = retry_for_s

    @classmethod
    def for_connection(cls, nc: NatsClient, timeout_s: float = 10.0) -> JetStreamReportPublisher:
        """Return a publisher on `nc` whose limit is MAX_RESULT_BYTES or the server's, less 64 KiB of room."""
        limit = min(MAX_RESULT_BYTES, nc.max_payload - 65_536)
        return cls(nc.jetstream(), max_bytes=limit, timeout_s=timeout_s)

    async def publish(self, report: RunReport) -> None:
        """Publish one report and wait for the stream's ack."""
        body = report.model_dump_json(context=PACKED).encode()  # a result's trades go packed
        if len(body) > self._max_bytes:
            raise ReportTooLarge(len(body), self._max_bytes)
        headers = inject_headers({MSG_ID_HEADER: report.message_id, "content-type": "application/json"})
        deadline = time.monotonic() + self._retry_for_s
        while True:
            try:
                await self._js.publish(
                    Subject.run(report.task_id),
                    body,
                    timeout=self._timeout_s,
                    stream=Stream.RUNS,
                    headers=headers,
                )
                return
            except ELECTION_ERRORS as exc:
                if time.monotonic() > deadline:
                    raise
                log.warning("publishing a report of task %s failed, retrying: %r", report.task_id, exc)
                await asyncio.sleep(ELECTION_RETRY_PAUSE_S)


async def subscribe_cancels(nc: NatsClient, on_cancel: Callable[[CancelRun], object]) -> Subscription:
    """Listen on the core NATS cancel broadcast; malformed messages are logged and dropped."""

    async def handle(msg: Msg) -> None:
        try:
            cancel = CancelRun.model_validate_json(msg.data)
        except ValidationError as exc:
            log.error("ignoring a malformed CancelRun: %s", exc)
            return
        on_cancel(cancel)

    return await nc.subscribe(Subject.CANCEL_RUN, cb=handle)
