"""The sweeper's composition root: builds the clients, the store and the service, wires the handlers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from backtest_core.contracts import Stream, utc_now
from backtest_marketdata import MongoCandleStore, reader_client
from backtest_marketdata.async_fingerprints import CandleStoreFingerprints
from backtest_messaging import declare_streams
from backtest_messaging.streams import server_urls
from backtest_observability import configure_telemetry
from faststream import FastStream
from faststream.nats import NatsBroker
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from pymongo import AsyncMongoClient

from backtest_sweeper.adapters.mongo_sweeps import MongoSweepStore
from backtest_sweeper.adapters.mongo_walkforwards import MongoWalkForwardStore
from backtest_sweeper.adapters.nats_bus import NatsSweepBus
from backtest_sweeper.adapters.nats_kv_locks import NatsKvLocks
from backtest_sweeper.handlers import build_router
from backtest_sweeper.plan import Chunking
from backtest_sweeper.service import SweeperService
from backtest_sweeper.settings import Settings
from backtest_sweeper.walkforward_service import WalkForwardService

log = logging.getLogger(__name__)

SERVICE_NAME = "backtest-sweeper"
STREAMS_USED = frozenset(
    {Stream.SWEEP_COMMANDS, Stream.SWEEP_EVENTS, Stream.WALKFORWARD_EVENTS, Stream.COMMANDS, Stream.EVENTS}
)


def create_app(settings: Settings, *, tracer_provider: TracerProvider | None = None) -> FastStream:
    """Return the sweeper application; nothing connects until it starts."""
    owns_provider = tracer_provider is None
    provider = tracer_provider or configure_telemetry(SERVICE_NAME, settings)
    broker = NatsBroker(
        server_urls(settings.nats_url),
        name=SERVICE_NAME,
        middlewares=[NatsTelemetryMiddleware(tracer_provider=provider)],
        logger=logging.getLogger("backtest_sweeper.broker"),  # JSON via root
    )
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri, tz_aware=True)
    store = MongoSweepStore(mongo[settings.mongodb_database])
    walkforward_store = MongoWalkForwardStore(mongo[settings.mongodb_database])
    bus = NatsSweepBus(broker)
    locks = NatsKvLocks(broker, replicas=settings.stream_replicas)  # sweepers in any number
    chunking = Chunking(bar_trials=settings.chunk_bar_trials)
    candles_mongo = reader_client(settings.mongodb_uri)
    fingerprints = CandleStoreFingerprints(MongoCandleStore(candles_mongo[settings.mongodb_database]))
    service = SweeperService(
        store, bus, utc_now, settings.trials_in_flight, locks, chunking, fingerprints=fingerprints
    )
    walkforwards = WalkForwardService(walkforward_store, store, bus, utc_now, locks)
    broker.include_router(build_router(service, walkforwards, redelivery_delay_s=settings.redelivery_delay_s))
    app = FastStream(broker, logger=logging.getLogger("backtest_sweeper.app"))

    @app.on_startup
    async def prepare() -> None:
        await broker.connect()
        await declare_streams(broker.connection.jetstream(), STREAMS_USED, settings.stream_replicas)
        await locks.open()
        await store.ensure_indexes()
        await walkforward_store.ensure_indexes()

    resuming: list[asyncio.Task[None]] = []

    async def resume_all() -> None:
        log.info("resumed %d open sweeps", await service.resume())
        log.info("resumed %d open walk-forwards", await walkforwards.resume())

    async def resume_periodically() -> None:
        """Sweepers run in any number: one killed between marking a trial SUBMITTED and sending it is
        not restarted, so every sweeper resumes every open sweep now and then (a resend is a no-op)."""
        while True:
            await asyncio.sleep(settings.resume_every_s)
            try:
                await resume_all()
            except Exception:  # NATS or MongoDB away: the next round tries again
                log.exception("resuming the open sweeps failed; again in %.0f s", settings.resume_every_s)

    @app.after_startup
    async def resume() -> None:
        await resume_all()
        resuming.append(asyncio.create_task(resume_periodically()))

    @app.on_shutdown
    async def close() -> None:
        for task in resuming:
            task.cancel()
        await mongo.close()
        candles_mongo.close()
        if owns_provider:
            provider.shutdown()

    return app
