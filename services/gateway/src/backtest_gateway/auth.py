"""JWT bearer authentication (HS256) and role-based authorization."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any

import jwt
from pydantic import BaseModel, ConfigDict

from backtest_gateway.errors import Forbidden, Unauthorized
from backtest_gateway.settings import GatewaySettings


class Role(StrEnum):
    """What a user may do: viewer reads own, researcher also submits/cancels own, admin everything."""

    VIEWER = "viewer"
    RESEARCHER = "researcher"
    ADMIN = "admin"


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
        claims = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=["HS256"],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_s,
            options={"require": ["exp", "iss", "aud", "sub"]},
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
    sub, role = claims.get("sub"), claims.get("role")
    if not isinstance(sub, str) or not sub:
        raise Unauthorized(f"token `sub` must be a non-empty user id, was {sub!r}")
    if not isinstance(role, str) or role not in {r.value for r in Role}:
        raise Unauthorized(f"token `role` must be one of viewer, researcher, admin, was {role!r}")
    _check_lifetime(claims, settings)
    return Principal(user_id=sub, role=Role(role))


def _check_lifetime(claims: dict[str, Any], settings: GatewaySettings) -> None:
    """Raise Unauthorized if the token lives longer than `jwt_max_lifetime_s` (from `iat`, else from now)."""
    exp, iat = claims["exp"], claims.get("iat")
    start = iat if isinstance(iat, int | float) and not isinstance(iat, bool) else time.time()
    lifetime = float(exp) - float(start)
    longest = settings.jwt_max_lifetime_s + (0.0 if iat is not None else settings.jwt_leeway_s)
    if lifetime > longest:
        raise Unauthorized(
            f"token lifetime must be at most {settings.jwt_max_lifetime_s} s, was {lifetime:.0f} s"
        )


def bearer_token(authorization: str | None) -> str:
    """Return the token of an `Authorization: Bearer <token>` header or raise Unauthorized."""
    if not authorization:
        raise Unauthorized("missing bearer token: send `Authorization: Bearer <token>`")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(f"Authorization must be `Bearer <token>`, was scheme {scheme!r}")
    return token.strip()
