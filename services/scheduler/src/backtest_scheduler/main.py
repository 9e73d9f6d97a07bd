"""The scheduler's composition root: builds the clients, adapters and service, wires the handlers."""

from __future__ import annotations

import logging
from typing import Any

from backtest_core.contracts import Stream, utc_now
from backtest_core.contracts.records import BACKTESTS_COLLECTION
from backtest_marketdata.async_fingerprints import CandleStoreFingerprints
from backtest_marketdata.mongo import reader_client
from backtest_messaging import declare_streams
from backtest_messaging.streams import server_urls
from backtest_observability import configure_telemetry
from faststream import FastStream
from faststream.nats import NatsBroker
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from pymongo import AsyncMongoClient

from backtest_scheduler.adapters.asyncio_timer import AsyncioTimer
from backtest_scheduler.adapters.mongo_result_cache import MongoResultCache
from backtest_scheduler.adapters.nats_event_bus import NatsDeadJobs, NatsEventBus
from backtest_scheduler.adapters.nats_kv_admission_store import NatsKvAdmissionStore
from backtest_scheduler.adapters.nats_kv_task_store import NatsKvTaskStore
from backtest_scheduler.adapters.tracing import TracedEventBus
from backtest_scheduler.admission import AdmissionLimits
from backtest_scheduler.admission_gate import AdmissionGate
from backtest_scheduler.handlers import build_router
from backtest_scheduler.service import SchedulerService
from backtest_scheduler.settings import Settings
from backtest_scheduler.task import RetryPolicy

log = logging.getLogger(__name__)

STREAMS_USED = frozenset(
    {Stream.COMMANDS, Stream.JOBS, Stream.RUNS, Stream.EVENTS, Stream.DEAD, Stream.ADVISORIES}
)
SERVICE_NAME = "backtest-scheduler"


def create_app(settings: Settings, *, tracer_provider: TracerProvider | None = None) -> FastStream:
    """Return the scheduler application; nothing connects until it starts.

    Every message is consumed and published inside a span, its trace context carried in the NATS
    headers (FastStream's telemetry middleware). `tracer_provider` (tests: one with an in-memory
    exporter) defaults to `configure_telemetry` with `settings.otlp_endpoint`, flushed at shutdown.
    """
    from backtest_marketdata import MongoCandleStore  # the candle store's fingerprint feeds the cache key

    owns_provider = tracer_provider is None
    provider = tracer_provider or configure_telemetry(SERVICE_NAME, settings)
    broker = NatsBroker(
        server_urls(settings.nats_url),
        name="backtest-scheduler",
        middlewares=[NatsTelemetryMiddleware(tracer_provider=provider)],
        logger=logging.getLogger("backtest_scheduler.broker"),  # JSON via root
    )
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri, tz_aware=True)
    candles_mongo = reader_client(settings.candles_mongodb_uri or settings.mongodb_uri)
    store = NatsKvTaskStore(broker, ttl_s=settings.task_ttl_s, replicas=settings.stream_replicas)
    timer = AsyncioTimer()
    bus = TracedEventBus(NatsEventBus(broker), provider.get_tracer(__name__))
    slots = NatsKvAdmissionStore(broker, replicas=settings.stream_replicas)
    limits = AdmissionLimits(settings.per_user_in_flight, settings.max_in_flight)
    gate = AdmissionGate(slots=slots, tasks=store, bus=bus, limits=limits)
    service = SchedulerService(
        store=store,
        cache=MongoResultCache(mongo[settings.mongodb_database][BACKTESTS_COLLECTION]),
        fingerprints=CandleStoreFingerprints(MongoCandleStore(candles_mongo[settings.mongodb_database])),
        bus=bus,
        dead_jobs=NatsDeadJobs(broker),
        timer=timer,
        policy=RetryPolicy(settings.max_attempts, settings.retry_base_delay_s, settings.retry_max_delay_s),
        clock=utc_now,
        admission=gate,
    )
    broker.include_router(build_router(service, redelivery_delay_s=settings.redelivery_delay_s))
    app = FastStream(broker, logger=logging.getLogger("backtest_scheduler.app"))

    @app.on_startup
    async def prepare() -> None:
        await broker.connect()
        await declare_streams(broker.connection.jetstream(), STREAMS_USED, settings.stream_replicas)
        await store.open()
        await slots.open()

    @app.after_startup
    async def resume() -> None:
        log.info("published the outboxes of %d tasks a dead scheduler left", await service.resume_owed())
        log.info("resumed the back-off of %d tasks waiting to retry", await service.resume_retries())
        log.info("freed the runner slots of %d tasks that ended meanwhile", await gate.resume())

    @app.on_shutdown
    async def close() -> None:
        await timer.close()
        await mongo.close()
        candles_mongo.close()
        if owns_provider:
            provider.shutdown()

    return app
