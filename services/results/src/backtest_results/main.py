"""The results writer's composition root: builds the clients and the writer, wires the handler."""

from __future__ import annotations

import logging
from typing import Any

from backtest_core.contracts import Stream
from backtest_core.contracts.records import BACKTESTS_COLLECTION
from backtest_messaging import declare_streams
from backtest_messaging.streams import server_urls
from backtest_observability import configure_telemetry
from faststream import FastStream
from faststream.nats import NatsBroker
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from pymongo import AsyncMongoClient

from backtest_results.adapters.mongo_backtest_writer import MongoBacktestWriter
from backtest_results.adapters.tracing import TracedBacktestWriter
from backtest_results.handlers import build_router
from backtest_results.settings import Settings

SERVICE_NAME = "backtest-results"


def create_app(settings: Settings, *, tracer_provider: TracerProvider | None = None) -> FastStream:
    """Return the results writer application; nothing connects until it starts.

    Each event is consumed in a span continuing the trace from its `traceparent` header (FastStream's
    telemetry middleware), and stored inside a "persistence" span. `tracer_provider` (tests: one with
    an in-memory exporter) defaults to `configure_telemetry` with `settings.otlp_endpoint`.
    """
    owns_provider = tracer_provider is None
    provider = tracer_provider or configure_telemetry(SERVICE_NAME, settings)
    broker = NatsBroker(
        server_urls(settings.nats_url),
        name="backtest-results",
        middlewares=[NatsTelemetryMiddleware(tracer_provider=provider)],
        logger=logging.getLogger("backtest_results.broker"),  # JSON via root
    )
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri, tz_aware=True)
    writer = MongoBacktestWriter(mongo[settings.mongodb_database][BACKTESTS_COLLECTION])
    traced = TracedBacktestWriter(writer, provider.get_tracer(__name__))
    broker.include_router(build_router(traced, redelivery_delay_s=settings.redelivery_delay_s))
    app = FastStream(broker, logger=logging.getLogger("backtest_results.app"))

    @app.on_startup
    async def prepare() -> None:
        await broker.connect()
        await declare_streams(broker.connection.jetstream(), [Stream.EVENTS], settings.stream_replicas)
        await writer.ensure_indexes()

    @app.on_shutdown
    async def close() -> None:
        await mongo.close()
        if owns_provider:
            provider.shutdown()

    return app
