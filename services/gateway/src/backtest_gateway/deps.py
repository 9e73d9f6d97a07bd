"""FastAPI dependencies as `Annotated` aliases: settings, ports and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from backtest_gateway.auth import Principal, decode_token
from backtest_gateway.errors import Unauthorized
from backtest_gateway.ports import CommandBus, EventFeed, TaskStore
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


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
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
