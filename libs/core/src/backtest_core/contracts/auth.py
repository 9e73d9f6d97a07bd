"""The access token's claims: what `backtest token create` and `POST /auth/login` sign, the gateway checks.

A token is a JWT signed with HMAC-SHA256 (ALGORITHM) under a secret of at least MIN_SECRET_BYTES shared
by the gateway and the signer. Its claims are `TokenClaims`: `sub` (the user id), `role`, `iss`, `aud`,
`iat` and `exp` (epoch seconds). The gateway verifies the signature, `iss`, `aud` and `exp` (the JWT
library's part, REQUIRED_CLAIMS present), then reads the rest with `TokenClaims.read`, which raises
ClaimsError naming the claim, and refuses a token living longer than its maximum (`check_lifetime`).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict

from backtest_core.model.config import Frozen

ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32  # HS256's key: at least the hash's output
DEFAULT_ISSUER = "backtest-platform"
DEFAULT_AUDIENCE = "backtest-gateway"
DEFAULT_MAX_LIFETIME_S = 7 * 86_400  # the longest token the gateway accepts unless configured otherwise
REQUIRED_CLAIMS = ("exp", "iss", "aud", "sub")  # checked by the JWT library with the signature


class Role(StrEnum):
    """What a user may do: viewer reads own, researcher also submits/cancels own, admin everything."""

    VIEWER = "viewer"
    RESEARCHER = "researcher"
    ADMIN = "admin"


ROLES: tuple[str, ...] = tuple(role.value for role in Role)


class ClaimsError(ValueError):
    """A token's claims are not acceptable; the message names the claim, what it must be and what it was."""


class TokenClaims(Frozen):
    """The claims of an access token. Times are epoch seconds; `iat` None: the token does not say."""

    model_config = ConfigDict(extra="ignore")  # a token may carry claims of its own

    sub: str
    role: Role
    iss: str
    aud: str | tuple[str, ...]
    iat: int | float | None = None
    exp: int | float

    @classmethod
    def issue(
        cls, user: str, role: Role, *, issuer: str, audience: str, issued_s: int, ttl_s: int
    ) -> TokenClaims:
        """Return the claims of a token for `user` with `role`, valid `ttl_s` seconds from `issued_s`."""
        return cls(sub=user, role=role, iss=issuer, aud=audience, iat=issued_s, exp=issued_s + ttl_s)

    @classmethod
    def read(cls, claims: Mapping[str, Any], *, now_s: float) -> TokenClaims:
        """Return the claims of a verified token's payload; ClaimsError if `sub` or `role` is not one.

        An `iat` that is not a number counts as issued at `now_s`.
        """
        sub, role, iat = claims.get("sub"), claims.get("role"), claims.get("iat")
        if not isinstance(sub, str) or not sub:
            raise ClaimsError(f"token `sub` must be a non-empty user id, was {sub!r}")
        if not isinstance(role, str) or role not in ROLES:
            raise ClaimsError(f"token `role` must be one of {', '.join(ROLES)}, was {role!r}")
        if iat is not None and (not isinstance(iat, int | float) or isinstance(iat, bool)):
            iat = now_s
        audience = claims.get("aud")
        try:
            return cls(
                sub=sub,
                role=Role(role),
                iss=claims.get("iss"),
                aud=tuple(audience) if isinstance(audience, list) else audience,
                iat=iat,
                exp=claims.get("exp"),
            )
        except (ValueError, TypeError) as error:  # pydantic's ValidationError is a ValueError
            raise ClaimsError(f"token claims are invalid: {error}") from error

    def payload(self) -> dict[str, Any]:
        """Return the claims as the JWT payload (absent `iat` left out)."""
        return self.model_dump(mode="json", exclude_none=True)

    def check_lifetime(self, *, max_lifetime_s: int, leeway_s: float, now_s: float) -> None:
        """Raise ClaimsError if the token lives longer than `max_lifetime_s` (from `iat`, else from now).

        Without `iat` the lifetime runs from `now_s` and the clock skew `leeway_s` is tolerated on top.
        """
        start = self.iat if self.iat is not None else now_s
        lifetime = self.exp - start
        longest = max_lifetime_s + (0.0 if self.iat is not None else leeway_s)
        if lifetime > longest:
            raise ClaimsError(f"token lifetime must be at most {max_lifetime_s} s, was {lifetime:.0f} s")
