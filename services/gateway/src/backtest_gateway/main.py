"""The composition root: `create_app(settings)` wires FastAPI, NATS (FastStream) and MongoDB."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import backtest_core
from backtest_core.contracts import Stream
from fastapi import FastAPI
from faststream.nats import NatsBroker

from backtest_gateway.adapters.mongo_tasks import MongoTaskStore
from backtest_gateway.adapters.nats_bus import NatsCommandBus
from backtest_gateway.adapters.nats_events import NatsEventFeed
from backtest_gateway.adapters.nats_streams import declare_streams
from backtest_gateway.errors import install_error_handlers
from backtest_gateway.ports import EventFeed, TaskStore
from backtest_gateway.routers import backtest_stream, backtests, health
from backtest_gateway.settings import GatewaySettings

STREAMS_USED = (Stream.COMMANDS, Stream.EVENTS)


def create_app(
    settings: GatewaySettings,
    *,
    broker: NatsBroker | None = None,
    store: TaskStore | None = None,
    feed: EventFeed | None = None,
) -> FastAPI:
    """Build the app; NATS connects and MongoDB is reached only when the app starts (lifespan).

    Tests pass a broker wrapped in FastStream's TestNatsBroker and in-memory `store`/`feed`.
    """
    broker = broker if broker is not None else NatsBroker(settings.nats_url, connect_timeout=5)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await broker.connect()
        mongo = None
        try:
            await declare_streams(broker.config.connection_state.stream, STREAMS_USED)
            if store is None:
                mongo_store, mongo = MongoTaskStore.connect(settings.mongodb_uri, settings.mongodb_database)
                await mongo_store.create_indexes()
                app.state.store = mongo_store
            yield
        finally:
            if mongo is not None:
                await mongo.close()
            await broker.stop()

    app = FastAPI(
        title="Backtest gateway",
        version=backtest_core.__version__,
        description="Submit crypto strategy backtests, follow their progress, read their results.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.broker = broker
    app.state.store = store
    app.state.bus = NatsCommandBus(broker, settings.publish_timeout_s)
    app.state.feed = (
        feed if feed is not None else NatsEventFeed(lambda: broker.config.connection_state.stream)
    )
    install_error_handlers(app)
    app.include_router(backtests.router)
    app.include_router(backtest_stream.router)
    app.include_router(health.router)
    return app
