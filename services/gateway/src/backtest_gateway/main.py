"""The composition root: `create_app(settings)` wires FastAPI, NATS (FastStream) and MongoDB."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import backtest_core
from backtest_core.contracts import Stream
from backtest_messaging import declare_streams
from backtest_messaging.streams import server_urls
from backtest_observability import configure_telemetry
from fastapi import FastAPI
from fastapi.routing import APIRoute
from faststream.nats import NatsBroker
from opentelemetry.sdk.trace import TracerProvider

from backtest_gateway.adapters.mongo_marketdata import MongoMarketData
from backtest_gateway.adapters.mongo_strategies import MongoStrategyStore
from backtest_gateway.adapters.mongo_sweeps import MongoSweepStore
from backtest_gateway.adapters.mongo_tasks import MongoTaskStore
from backtest_gateway.adapters.mongo_users import MongoUserStore
from backtest_gateway.adapters.nats_bus import NatsCommandBus
from backtest_gateway.adapters.nats_events import NatsEventFeed
from backtest_gateway.adapters.nats_kv_quotas import NatsKvQuotaStore
from backtest_gateway.body_limit import BodyLimitMiddleware
from backtest_gateway.errors import install_error_handlers
from backtest_gateway.finished_records import FinishedRecords
from backtest_gateway.graphql_api import graphql_router
from backtest_gateway.heavy_turns import HeavyTurns
from backtest_gateway.ports import EventFeed, MarketData, QuotaStore, StrategyStore, SweepStore, TaskStore
from backtest_gateway.ratelimit import Bucket, Clock, Rate, RateLimiter
from backtest_gateway.result_cache import ResultCache
from backtest_gateway.routers import (
    analysis,
    backtest_stream,
    backtests,
    health,
    login,
    report,
    strategies,
    strategy_params,
    sweep_stream,
    symbol_gaps,
    symbols,
    walkforward_stream,
)
from backtest_gateway.routers import sweeps as sweeps_router
from backtest_gateway.routers import walkforward as walkforward_router
from backtest_gateway.routers.web import install_dashboard
from backtest_gateway.settings import GatewaySettings
from backtest_gateway.stream_slots import LEASE_S, StreamSlots
from backtest_gateway.tracing import TracingMiddleware
from backtest_gateway.users import UserStore

STREAMS_USED = (Stream.COMMANDS, Stream.EVENTS, Stream.SWEEP_COMMANDS)
SERVICE_NAME = "backtest-gateway"
QUOTA_TTL_MIN_S = 300.0


def operation_id(route: APIRoute) -> str:
    """Name an operation after its handler (`submit_backtest`), so generated clients read well."""
    return route.name


def quota_ttl_s(*limiters: RateLimiter) -> float:
    """How long a shared quota entry lives unwritten: past every bucket's refill time and two stream leases
    (an entry that old means the same as none: a full bucket, no live lease)."""
    return max(QUOTA_TTL_MIN_S, 2 * LEASE_S, *(limiter.longest_refill_s for limiter in limiters))


def create_app(
    settings: GatewaySettings,
    *,
    broker: NatsBroker | None = None,
    store: TaskStore | None = None,
    feed: EventFeed | None = None,
    strategy_store: StrategyStore | None = None,
    market: MarketData | None = None,
    users: UserStore | None = None,
    sweeps: SweepStore | None = None,
    quotas: QuotaStore | None = None,
    clock: Clock | None = None,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """Build the app; NATS connects and MongoDB is reached only when the app starts (lifespan).

    Tests pass a broker wrapped in FastStream's TestNatsBroker and in-memory `store`/`feed`/
    `strategy_store`/`market`/`quotas`; each port left None gets its MongoDB adapter (`quotas`: the NATS
    KV bucket every gateway shares). `clock` (wall-clock seconds) drives the rate limits and stream
    leases. `tracer_provider` (tests: one with an in-memory exporter) defaults to
    `configure_telemetry` with `settings.otlp_endpoint`, shut down (flushed) at stop.
    """
    broker = broker if broker is not None else NatsBroker(server_urls(settings.nats_url), connect_timeout=5)
    owns_provider = tracer_provider is None
    provider = tracer_provider or configure_telemetry(SERVICE_NAME, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await broker.connect()
        mongo = None
        mongo_market = None
        try:
            await declare_streams(
                broker.config.connection_state.stream, STREAMS_USED, settings.stream_replicas
            )
            if isinstance(shared_quotas, NatsKvQuotaStore):
                await shared_quotas.open(quota_ttl_s(app.state.limiter, app.state.login_limiter))
            if store is None or strategy_store is None or users is None or sweeps is None:
                mongo_store, mongo = MongoTaskStore.connect(settings.mongodb_uri, settings.mongodb_database)
                if store is None:
                    await mongo_store.create_indexes()
                    app.state.store = FinishedRecords(mongo_store)
                if strategy_store is None:
                    mongo_strategies = MongoStrategyStore(mongo[settings.mongodb_database])
                    await mongo_strategies.create_indexes()
                    app.state.strategies = mongo_strategies
                if users is None:
                    app.state.users = MongoUserStore(mongo[settings.mongodb_database])
                if sweeps is None:
                    app.state.sweeps = MongoSweepStore(mongo[settings.mongodb_database])
            if market is None:
                mongo_market = MongoMarketData.connect(
                    settings.candles_mongodb_uri or settings.mongodb_uri, settings.mongodb_database
                )
                app.state.market = mongo_market
            yield
        finally:
            if mongo is not None:
                await mongo.close()
            if mongo_market is not None:
                mongo_market.close()
            await broker.stop()
            if owns_provider:
                provider.shutdown()

    app = FastAPI(
        title="Backtest gateway",
        version=backtest_core.__version__,
        description=(
            "Submit crypto strategy backtests, follow their progress, read their results; browse symbols and "
            "candles; upload strategies (checked, never run here: only in the sandbox); combine and rank "
            "finished backtests. GraphQL at /graphql. Every endpoint but /health needs "
            "`Authorization: Bearer <jwt>`; roles: viewer reads own, researcher also submits and manages "
            "own strategies, admin everything. Per-user rate limits answer 429 with Retry-After."
        ),
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        docs_url=None,  # served from the dashboard's build (routers/web.py), not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.broker = broker
    app.state.store = FinishedRecords(store) if store is not None else None
    app.state.strategies = strategy_store
    app.state.market = market
    app.state.users = users
    app.state.sweeps = sweeps
    wall_clock = clock or time.time
    login_rates = {
        Bucket.READ: Rate(settings.login_attempts_per_min / 60.0, settings.login_burst),
        Bucket.SUBMIT: Rate(settings.login_address_per_min / 60.0, settings.login_address_burst),
    }
    shared_quotas = quotas or NatsKvQuotaStore(
        broker, scope=settings.mongodb_database, replicas=settings.stream_replicas
    )
    app.state.limiter = RateLimiter.from_settings(settings, shared_quotas, wall_clock)
    app.state.login_limiter = RateLimiter(login_rates, shared_quotas, wall_clock, name="login")
    app.state.bus = NatsCommandBus(broker, settings.publish_timeout_s)
    app.state.result_cache = ResultCache()
    app.state.heavy_turns = HeavyTurns(settings.heavy_answers_per_user)
    app.state.stream_slots = StreamSlots(settings.streams_per_user_max, shared_quotas, clock=wall_clock)
    app.state.feed = (
        feed if feed is not None else NatsEventFeed(lambda: broker.config.connection_state.stream)
    )
    install_error_handlers(app)
    app.add_middleware(TracingMiddleware, tracer=provider.get_tracer(__name__))
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.request_body_max_bytes)
    app.include_router(backtests.router)
    app.include_router(backtest_stream.router)
    app.include_router(health.router)
    app.include_router(login.router)
    app.include_router(report.router)
    app.include_router(symbols.router)
    app.include_router(symbol_gaps.router)
    app.include_router(strategy_params.router)
    app.include_router(strategies.router)
    app.include_router(analysis.router)
    app.include_router(sweep_stream.router)
    app.include_router(sweeps_router.router)
    app.include_router(walkforward_stream.router)
    app.include_router(walkforward_router.router)
    app.include_router(graphql_router())
    install_dashboard(app, settings.web_dist)
    return app
