"""The results writer's composition root: builds the clients and the writer, wires the handler."""

from __future__ import annotations

from typing import Any

from backtest_core.contracts import STREAMS, Stream
from faststream import FastStream
from faststream.nats import NatsBroker
from pymongo import AsyncMongoClient

from backtest_results.adapters.mongo_backtest_writer import MongoBacktestWriter
from backtest_results.documents import BACKTESTS_COLLECTION
from backtest_results.handlers import build_router
from backtest_results.settings import Settings
from backtest_results.streams import declare_streams


def create_app(settings: Settings) -> FastStream:
    """Return the results writer application; nothing connects until it starts."""
    broker = NatsBroker(settings.nats_url, name="backtest-results")
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri, tz_aware=True)
    writer = MongoBacktestWriter(mongo[settings.mongodb_database][BACKTESTS_COLLECTION])
    broker.include_router(build_router(writer, redelivery_delay_s=settings.redelivery_delay_s))
    app = FastStream(broker)

    @app.on_startup
    async def prepare() -> None:
        await broker.connect()
        await declare_streams(broker.connection.jetstream(), [s for s in STREAMS if s.name is Stream.EVENTS])
        await writer.ensure_indexes()

    @app.on_shutdown
    async def close() -> None:
        await mongo.close()

    return app
