"""Signing in: check a user's password against the `users` collection and mint the API's access token."""

from __future__ import annotations

import functools
import time
from typing import Protocol

import jwt
from backtest_core.contracts.accounts import hash_password, verify_password
from backtest_core.contracts.auth import ALGORITHM, Role, TokenClaims
from pydantic import BaseModel, ConfigDict

from backtest_gateway.errors import Unauthorized
from backtest_gateway.settings import GatewaySettings

WRONG_CREDENTIALS = "user name or password is wrong"


class StoredUser(BaseModel):
    """A user as stored: name, role and the argon2 hash of the password."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: str
    password_hash: str


class UserStore(Protocol):
    """Reads users by name."""

    async def get(self, name: str) -> StoredUser | None:
        """Return the user called `name`, or None."""
        ...


@functools.cache
def _unknown_user_hash() -> str:
    """A hash no password matches quickly, verified for unknown names so both answers take as long."""
    return hash_password("no user has this password " + str(time.time_ns()))


async def authenticate(users: UserStore, name: str, password: str) -> StoredUser:
    """Return the user if `password` is theirs; else Unauthorized without saying which part was wrong."""
    user = await users.get(name)
    if user is None:
        verify_password(_unknown_user_hash(), password)
        raise Unauthorized(WRONG_CREDENTIALS)
    if not verify_password(user.password_hash, password):
        raise Unauthorized(WRONG_CREDENTIALS)
    return user


def mint_token(user: StoredUser, settings: GatewaySettings, *, now_s: int | None = None) -> tuple[str, int]:
    """Return a signed access token for `user` (the claims `backtest token create` signs) and its lifetime."""
    ttl_s = settings.login_token_ttl_s
    claims = TokenClaims.issue(
        user.name,
        Role(user.role),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        issued_s=int(time.time()) if now_s is None else now_s,
        ttl_s=ttl_s,
    )
    return jwt.encode(claims.payload(), settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM), ttl_s
