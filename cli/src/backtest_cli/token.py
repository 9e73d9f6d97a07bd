"""`backtest token create`: sign a gateway access token (JWT, HS256) for an operator to hand out.

The secret is read from an environment variable (default GATEWAY_JWT_SECRET, the gateway's own), else,
for the default variable, from the ``secrets/jwt`` file `scripts/up` writes in the platform's run folder
(see `backtest_cli.platform_env`); never from the command line, so it does not end up in shell history
or process listings. Where it came from is said on stderr.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import time
from typing import Any

from backtest_core.contracts.auth import (
    ALGORITHM,
    DEFAULT_AUDIENCE,
    DEFAULT_ISSUER,
    DEFAULT_MAX_LIFETIME_S,
    MIN_SECRET_BYTES,
    ROLES,
    Role,
    TokenClaims,
)

from backtest_cli.platform_env import (
    JWT_SECRET_FILE,
    NO_RUN_DIR,
    PlatformEnvError,
    Setting,
    find_jwt_secret,
    run_file,
)

DEFAULT_SECRET_ENV = "GATEWAY_JWT_SECRET"
EXIT_OK, EXIT_BAD_INPUT = 0, 2


class TokenError(Exception):
    """The token cannot be made; the message names the option or variable."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_hs256(claims: dict[str, Any], secret: bytes) -> str:
    """Return the compact JWT (RFC 7519) of `claims` signed with HMAC-SHA256 (contracts.auth.ALGORITHM)."""
    header = _b64url(json.dumps({"alg": ALGORITHM, "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


def create_token(
    user: str,
    role: str,
    secret: bytes,
    *,
    ttl_s: int,
    issuer: str = DEFAULT_ISSUER,
    audience: str = DEFAULT_AUDIENCE,
    now_s: int | None = None,
) -> str:
    """Return a token for `user` with `role`, valid for `ttl_s` seconds from `now_s` (epoch seconds)."""
    if not user.strip():
        raise TokenError("option --user: expected a non-empty user id, was ''")
    if role not in ROLES:
        raise TokenError(f"option --role: expected one of {', '.join(ROLES)}, was {role!r}")
    if ttl_s <= 0:
        raise TokenError(f"option --ttl: expected a positive duration, was {ttl_s} s")
    if len(secret) < MIN_SECRET_BYTES:
        raise TokenError(
            f"the secret must be at least {MIN_SECRET_BYTES} bytes for {ALGORITHM}, was {len(secret)}"
        )
    issued = int(time.time()) if now_s is None else now_s
    claims = TokenClaims.issue(
        user, Role(role), issuer=issuer, audience=audience, issued_s=issued, ttl_s=ttl_s
    )
    return sign_hs256(claims.payload(), secret)


def parse_duration(text: str) -> int:
    """Parse `90`, `90s`, `30m`, `12h` or `7d` into seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        return int(number) * units[unit]
    except ValueError:
        raise TokenError(
            f"option --ttl: expected a duration like 3600, 30m, 12h or 7d, was {text!r}"
        ) from None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `token create` to the `backtest` parser."""
    parser = subparsers.add_parser("token", help="create gateway access tokens (operators)")
    actions = parser.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create", help="print a signed token", description="Print a JWT for the gateway (HS256)."
    )
    create.add_argument("--user", required=True, help="user id (the token's `sub`)")
    create.add_argument("--role", required=True, choices=ROLES, help="what the user may do")
    create.add_argument(
        "--secret-env",
        default=DEFAULT_SECRET_ENV,
        metavar="NAME",
        help=f"environment variable holding the gateway's JWT secret (default {DEFAULT_SECRET_ENV}, "
        "else the platform's .run/secrets/jwt written by scripts/up)",
    )
    create.add_argument(
        "--ttl",
        default="24h",
        help="validity: seconds or 30m, 12h, 7d (default 24h; a gateway refuses tokens living longer "
        f"than GATEWAY_JWT_MAX_LIFETIME_S, default {DEFAULT_MAX_LIFETIME_S // 86_400}d)",
    )
    create.add_argument("--issuer", default=DEFAULT_ISSUER, help=f"`iss` claim (default {DEFAULT_ISSUER})")
    create.add_argument(
        "--audience", default=DEFAULT_AUDIENCE, help=f"`aud` claim (default {DEFAULT_AUDIENCE})"
    )
    create.set_defaults(handler=handle_create)


def handle_create(args: argparse.Namespace) -> int:
    """Print the token on stdout; on bad input print one message on stderr and return 2."""
    try:
        secret = find_secret(args.secret_env)
        ttl_s = parse_duration(args.ttl)
        token = create_token(
            args.user,
            args.role,
            secret.value.encode(),
            ttl_s=ttl_s,
            issuer=args.issuer,
            audience=args.audience,
        )
    except (TokenError, PlatformEnvError) as error:
        print(f"backtest token create: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"backtest token create: secret from {secret.source}", file=sys.stderr)
    if ttl_s > DEFAULT_MAX_LIFETIME_S:
        print(
            f"backtest token create: --ttl {args.ttl} is longer than a gateway's default maximum of "
            f"{DEFAULT_MAX_LIFETIME_S} s: only a gateway with GATEWAY_JWT_MAX_LIFETIME_S >= {ttl_s} "
            "accepts it",
            file=sys.stderr,
        )
    print(token)
    return EXIT_OK


def find_secret(variable: str) -> Setting:
    """Return the JWT secret from `variable`, else (default variable only) the run folder's secrets/jwt."""
    if variable != DEFAULT_SECRET_ENV:
        if not os.environ.get(variable):
            raise TokenError(f"environment variable {variable} must hold the JWT secret, was unset")
        return Setting(os.environ[variable], variable)
    found = find_jwt_secret(variable)
    if found is None:
        path = run_file(JWT_SECRET_FILE)
        missing = NO_RUN_DIR if path is None else f"{path} (written by scripts/up) does not exist"
        raise TokenError(
            f"environment variable {variable} must hold the JWT secret, was unset, and {missing}"
        )
    return found
