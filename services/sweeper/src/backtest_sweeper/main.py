"""The sweeper's composition root: builds the clients, the store and the service, wires the handlers."""

from __future__ import annotations

import logging
from typing import Any

from backtest_core.contracts import Stream, utc_now
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
from backtest_sweeper.handlers import build_router
from backtest_sweeper.service import SweeperService
from backtest_sweeper.settings import Settings
from backtest_sweeper.walkforward_service import WalkForwardService

log = logging.getLogger(__name__)

SERVICE_NAME = "backtest-sweeper"
STREAMS_USED = frozenset({Stream.SWEEP_COMMANDS, Stream.SWEEP_EVENTS, Stream.COMMANDS, Stream.EVENTS})


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
    service = SweeperService(store, bus, utc_now, settings.trials_in_flight)
    walkforwards = WalkForwardService(walkforward_store, store, bus, utc_now)
    broker.include_router(build_router(service, walkforwards, redelivery_delay_s=settings.redelivery_delay_s))
    app = FastStream(broker, logger=logging.getLogger("backtest_sweeper.app"))

    @app.on_startup
    async def prepare() -> None:
        await broker.connect()
        await declare_streams(broker.connection.jetstream(), STREAMS_USED, settings.stream_replicas)
        await store.ensure_indexes()
        await walkforward_store.ensure_indexes()

    @app.after_startup
    async def resume() -> None:
        log.info("resumed %d open sweeps", await service.resume())
        log.info("resumed %d open walk-forwards", await walkforwards.resume())

    @app.on_shutdown
    async def close() -> None:
        await mongo.close()
        if owns_provider:
            provider.shutdown()

    return app
