"""`POST /auth/login`: a user name and password in, the API's bearer token out (rate limited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from backtest_gateway.deps import SettingsDep
from backtest_gateway.ratelimit import Bucket, RateLimiter
from backtest_gateway.users import UserStore, authenticate, mint_token

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginRequest(BaseModel):
    """The sign-in form."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class LoginResponse(BaseModel):
    """A bearer token for `Authorization: Bearer <access_token>`, valid `expires_in` seconds."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int
    user: str
    role: str


def get_users(request: Request) -> UserStore:
    """The user store (set by create_app)."""
    users: UserStore = request.app.state.users
    return users


def get_login_limiter(request: Request) -> RateLimiter:
    """The sign-in attempts limiter (set by create_app): one bucket per user name, one per client address."""
    limiter: RateLimiter = request.app.state.login_limiter
    return limiter


@router.post("/login", responses={401: {"description": "wrong user name or password"}, 429: {}})
async def login(
    body: LoginRequest,
    request: Request,
    settings: SettingsDep,
    users: Annotated[UserStore, Depends(get_users)],
    limiter: Annotated[RateLimiter, Depends(get_login_limiter)],
) -> LoginResponse:
    """Check the password (argon2) and return a token with the user's role; 401 names neither part."""
    client = request.client.host if request.client else "unknown"
    await limiter.take(f"name:{body.username}", Bucket.READ)
    await limiter.take(f"addr:{client}", Bucket.SUBMIT)
    user = await authenticate(users, body.username, body.password)
    token, ttl_s = mint_token(user, settings)
    return LoginResponse(access_token=token, expires_in=ttl_s, user=user.name, role=user.role)
