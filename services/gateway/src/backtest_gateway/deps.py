"""FastAPI dependencies as `Annotated` aliases: settings, ports and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from backtest_gateway.auth import Principal, decode_token
from backtest_gateway.errors import Unauthorized
from backtest_gateway.heavy_turns import HeavyTurns
from backtest_gateway.ports import CommandBus, EventFeed, MarketData, StrategyStore, SweepStore, TaskStore
from backtest_gateway.ratelimit import Bucket, RateLimiter
from backtest_gateway.result_cache import ResultCache
from backtest_gateway.settings import GatewaySettings

_bearer = HTTPBearer(auto_error=False, description="JWT from `backtest token create`")


def get_settings(request: Request) -> GatewaySettings:
    """The process settings (set by create_app)."""
    settings: GatewaySettings = request.app.state.settings
    return settings


def get_store(request: Request) -> TaskStore:
    """The task store (set by create_app)."""
    store: TaskStore = request.app.state.store
    return store


def get_bus(request: Request) -> CommandBus:
    """The command bus (set by create_app)."""
    bus: CommandBus = request.app.state.bus
    return bus


def get_feed(request: Request) -> EventFeed:
    """The event feed (set by create_app)."""
    feed: EventFeed = request.app.state.feed
    return feed


def get_strategies(request: Request) -> StrategyStore:
    """The strategy store (set by create_app)."""
    strategies: StrategyStore = request.app.state.strategies
    return strategies


def get_market(request: Request) -> MarketData:
    """The market data reader (set by create_app)."""
    market: MarketData = request.app.state.market
    return market


def get_limiter(request: Request) -> RateLimiter:
    """The per-user rate limiter (set by create_app)."""
    limiter: RateLimiter = request.app.state.limiter
    return limiter


def get_result_cache(request: Request) -> ResultCache:
    """The decoded-result cache (set by create_app)."""
    cache: ResultCache = request.app.state.result_cache
    return cache


def get_heavy_turns(request: Request) -> HeavyTurns:
    """Each user's turns for heavy answers (set by create_app)."""
    turns: HeavyTurns = request.app.state.heavy_turns
    return turns


def get_sweeps(request: Request) -> SweepStore:
    """The sweep store (set by create_app)."""
    sweeps: SweepStore = request.app.state.sweeps
    return sweeps


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
SweepsDep = Annotated[SweepStore, Depends(get_sweeps)]
ResultCacheDep = Annotated[ResultCache, Depends(get_result_cache)]
HeavyTurnsDep = Annotated[HeavyTurns, Depends(get_heavy_turns)]
StrategiesDep = Annotated[StrategyStore, Depends(get_strategies)]
MarketDep = Annotated[MarketData, Depends(get_market)]
LimiterDep = Annotated[RateLimiter, Depends(get_limiter)]
StoreDep = Annotated[TaskStore, Depends(get_store)]
BusDep = Annotated[CommandBus, Depends(get_bus)]


def get_principal(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Authenticate the `Authorization: Bearer` token or raise 401."""
    if credentials is None:
        raise Unauthorized("missing bearer token: send `Authorization: Bearer <token>`")
    return decode_token(credentials.credentials, settings)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_reader(principal: PrincipalDep, limiter: LimiterDep) -> Principal:
    """Authenticate and spend one read token of the caller (429 when empty)."""
    await limiter.take(principal.user_id, Bucket.READ)
    return principal


async def get_submitter(principal: PrincipalDep, limiter: LimiterDep) -> Principal:
    """Authenticate and spend one submission token of the caller (429 when empty)."""
    await limiter.take(principal.user_id, Bucket.SUBMIT)
    return principal


ReaderDep = Annotated[Principal, Depends(get_reader)]
SubmitterDep = Annotated[Principal, Depends(get_submitter)]
