"""The composition root: `create_app(settings)` wires NATS, MongoDB and Docker into a RunnerApp."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import docker
import nats
from backtest_core.contracts import Stream
from backtest_messaging import declare_streams
from backtest_messaging.streams import server_urls
from backtest_observability import configure_telemetry
from nats.aio.client import Client as NatsClient
from nats.aio.subscription import Subscription
from opentelemetry.sdk.trace import TracerProvider

from backtest_runner.adapters.mongo_candles import MongoCandleSource
from backtest_runner.adapters.nats_jetstream import (
    JetStreamJobSource,
    JetStreamReportPublisher,
    subscribe_cancels,
)
from backtest_runner.adapters.tracing import (
    JobTraceContexts,
    TracedCandleSource,
    TracedJobExecutor,
    TracedJobSource,
    TracedSandbox,
)
from backtest_runner.heartbeats import BEATS_PER_TTL, RunnerHeartbeats, heartbeat_bucket, keep_beating
from backtest_runner.ports import CandleSource, Sandbox
from backtest_runner.progress import ProgressThrottle
from backtest_runner.sandbox.docker_sandbox import DockerSandbox, SandboxContainers
from backtest_runner.sandbox.limits import MIB
from backtest_runner.sandbox.seccomp import load_seccomp_profile
from backtest_runner.service import RunnerService
from backtest_runner.settings import RunnerSettings

log = logging.getLogger(__name__)

RUNNER_STREAMS = (Stream.JOBS, Stream.RUNS)
SERVICE_NAME = "backtest-runner"


@dataclass
class RunnerApp:
    """A runner process: `start()` connects and begins pulling jobs, `stop()` drains and disconnects.

    `candles` and `sandbox` may be injected (tests); otherwise they are built from the settings at start.
    `tracer_provider` (tests: one with an in-memory exporter) defaults to `configure_telemetry` with
    `settings.otlp_endpoint`; each job runs in a span continuing the trace of the message that queued it.
    The runner beats in NATS KV from before its first fetch until `stop()`; with the Docker sandbox
    (not an injected one) each beat also removes the containers of this instance's gone runners.
    """

    settings: RunnerSettings
    candles: CandleSource | None = None
    sandbox: Sandbox | None = None
    tracer_provider: TracerProvider | None = None
    service: RunnerService | None = None
    _closers: list[Callable[[], object]] = field(default_factory=list)
    _nc: NatsClient | None = None
    _cancel_sub: Subscription | None = None
    _source: JetStreamJobSource | None = None
    _containers: SandboxContainers | None = None
    _beating: asyncio.Task[None] | None = None

    async def start(self) -> RunnerService:
        """Connect, remove orphaned containers, declare streams and the consumer; return the job loop."""
        settings = self.settings
        if self.tracer_provider is None:
            self.tracer_provider = configure_telemetry(SERVICE_NAME, settings)
            self._closers.append(self.tracer_provider.shutdown)
        tracer = self.tracer_provider.get_tracer(__name__)
        if self.sandbox is None:
            client = docker.from_env()
            self._closers.append(client.close)
            docker_sandbox = DockerSandbox(
                client,
                settings.sandbox_image,
                settings.sandbox_limits(),
                settings.runner_id,
                seccomp_profile=load_seccomp_profile(settings.seccomp_profile),
                instance_id=settings.instance_id,
                warm_idle_s=settings.warm_idle_s,
                warm_max=settings.warm_max,
            )
            self._closers.append(docker_sandbox.close)  # before client.close: closers run in reverse
            self.sandbox = docker_sandbox
            self._containers = SandboxContainers(client, settings.instance_id)
        if self.candles is None:
            self.candles, mongo = MongoCandleSource.connect(
                settings.mongodb_uri, settings.mongodb_database, settings.candle_cache_mb * MIB
            )
            self._closers.append(mongo.close)
        removed = self.sandbox.remove_orphans()
        if removed:
            log.warning("removed %d orphaned sandbox container(s) of runner %s", removed, settings.runner_id)
        self._nc = await nats.connect(
            server_urls(settings.nats_url), name=f"runner-{settings.runner_id}", max_reconnect_attempts=-1
        )
        js = self._nc.jetstream()
        await declare_streams(js, RUNNER_STREAMS, settings.stream_replicas)
        heartbeats = RunnerHeartbeats(
            await heartbeat_bucket(js, settings.heartbeat_ttl_s, settings.stream_replicas),
            settings.instance_id,
            settings.runner_id,
        )
        await heartbeats.first_beat()  # alive before the first job: nobody takes this runner's containers
        self._beating = asyncio.create_task(
            keep_beating(heartbeats, self._containers, settings.heartbeat_ttl_s / BEATS_PER_TTL)
        )
        self._source = await JetStreamJobSource.bind(js, settings.max_ack_pending)
        contexts = JobTraceContexts()
        executor = TracedJobExecutor(
            tracer=tracer,
            contexts=contexts,
            runner_id=settings.runner_id,
            candles=TracedCandleSource(self.candles, tracer),
            sandbox=TracedSandbox(self.sandbox, tracer),
            publisher=JetStreamReportPublisher.for_connection(self._nc),
            work_dir=settings.job_root(),
            equity_points_max=settings.equity_points_max,
            throttle_factory=lambda: ProgressThrottle(
                settings.progress_interval_s, settings.progress_step, time.monotonic
            ),
        )
        self.service = RunnerService(
            source=TracedJobSource(self._source, contexts),
            executor=executor,
            slots=settings.slots,
            fetch_timeout_s=settings.fetch_timeout_s,
            heartbeat_interval_s=settings.heartbeat_interval_s,
            batch_max=settings.batch_max,
        )
        self._cancel_sub = await subscribe_cancels(self._nc, self.service.cancel)
        return self.service

    async def stop(self) -> None:
        """Stop fetching, let running jobs finish within the grace period (then nak them), disconnect."""
        if self.service is not None:
            await self.service.stop(self.settings.shutdown_grace_s)
        if self._beating is not None:
            self._beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beating
        if self._cancel_sub is not None:
            await self._cancel_sub.unsubscribe()
        if self._source is not None:
            await self._source.close()
        if self._nc is not None:
            await self._nc.drain()
        for close in reversed(self._closers):
            close()


def create_app(settings: RunnerSettings) -> RunnerApp:
    """Return an unstarted runner for these settings; nothing connects until `start()`."""
    return RunnerApp(settings)
