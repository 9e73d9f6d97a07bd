"""JWT bearer authentication (HS256) and role-based authorization of the claims in contracts.auth."""

from __future__ import annotations

import time

import jwt
from backtest_core.contracts.auth import ALGORITHM, REQUIRED_CLAIMS, ClaimsError, Role, TokenClaims
from pydantic import BaseModel, ConfigDict

from backtest_gateway.errors import Forbidden, Unauthorized
from backtest_gateway.settings import GatewaySettings

__all__ = ["Principal", "Role", "bearer_token", "decode_token"]


class Principal(BaseModel):
    """The authenticated caller: `user_id` is the token's `sub`."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    role: Role

    @property
    def is_admin(self) -> bool:
        """True for administrators, who see and act on every user's tasks."""
        return self.role is Role.ADMIN

    def can_see(self, owner_id: str) -> bool:
        """True if this caller may see a task owned by `owner_id`."""
        return self.is_admin or owner_id == self.user_id

    def require(self, *roles: Role) -> None:
        """Raise Forbidden unless the caller has one of `roles` (admin always passes)."""
        if not self.is_admin and self.role not in roles:
            allowed = ", ".join(role.value for role in (*roles, Role.ADMIN))
            raise Forbidden(f"this action needs role {allowed}, was {self.role.value}")


def decode_token(token: str, settings: GatewaySettings) -> Principal:
    """Verify signature, issuer, audience and expiry of `token` and return its principal."""
    try:
        payload = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_s,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.ExpiredSignatureError as error:
        raise Unauthorized("token expired") from error
    except jwt.InvalidAudienceError as error:
        raise Unauthorized(f"token audience must be {settings.jwt_audience!r}") from error
    except jwt.InvalidIssuerError as error:
        raise Unauthorized(f"token issuer must be {settings.jwt_issuer!r}") from error
    except jwt.InvalidSignatureError as error:
        raise Unauthorized("token signature is invalid") from error
    except jwt.PyJWTError as error:
        raise Unauthorized(f"token is invalid: {error}") from error
    now_s = time.time()
    try:
        claims = TokenClaims.read(payload, now_s=now_s)
        claims.check_lifetime(
            max_lifetime_s=settings.jwt_max_lifetime_s, leeway_s=settings.jwt_leeway_s, now_s=now_s
        )
    except ClaimsError as error:
        raise Unauthorized(str(error)) from error
    return Principal(user_id=claims.sub, role=claims.role)


def bearer_token(authorization: str | None) -> str:
    """Return the token of an `Authorization: Bearer <token>` header or raise Unauthorized."""
    if not authorization:
        raise Unauthorized("missing bearer token: send `Authorization: Bearer <token>`")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(f"Authorization must be `Bearer <token>`, was scheme {scheme!r}")
    return token.strip()
