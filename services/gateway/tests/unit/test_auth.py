"""Token verification and role checks, without HTTP."""

from __future__ import annotations

import time

import jwt
import pytest
from backtest_gateway.auth import Principal, Role, bearer_token, decode_token
from backtest_gateway.errors import Forbidden, Unauthorized
from backtest_gateway.settings import GatewaySettings

pytestmark = pytest.mark.unit

SECRET = "unit-secret-0123456789abcdef-0123456789"
SETTINGS = GatewaySettings(jwt_secret=SECRET)


def _token(**claims):
    base = {"sub": "alice", "role": "viewer", "iss": "backtest-platform", "aud": "backtest-gateway"}
    return jwt.encode({**base, "exp": int(time.time()) + 60, **claims}, SECRET, algorithm="HS256")


def test_valid_token_gives_user_and_role():
    assert decode_token(_token(), SETTINGS) == Principal(user_id="alice", role=Role.VIEWER)


def test_expiry_within_leeway_is_accepted_and_beyond_is_rejected():
    now = int(time.time())

    assert decode_token(_token(exp=now - 5), SETTINGS).user_id == "alice"  # leeway 10 s
    with pytest.raises(Unauthorized, match="expired"):
        decode_token(_token(exp=now - 60), SETTINGS)


def test_short_secret_is_refused_with_its_length():
    with pytest.raises(ValueError, match="at least 32 bytes for HS256, was 6 bytes"):
        GatewaySettings(jwt_secret="secret")


def test_bearer_header_parsing():
    assert bearer_token("Bearer abc.def.ghi") == "abc.def.ghi"
    with pytest.raises(Unauthorized, match="missing bearer token"):
        bearer_token(None)
    with pytest.raises(Unauthorized, match="was scheme 'Basic'"):
        bearer_token("Basic dXNlcg==")


def test_role_matrix():
    viewer, researcher, admin = (Principal(user_id="u", role=r) for r in Role)

    with pytest.raises(Forbidden, match="needs role researcher, admin, was viewer"):
        viewer.require(Role.RESEARCHER)
    researcher.require(Role.RESEARCHER)
    admin.require(Role.RESEARCHER)
    assert (viewer.can_see("u"), viewer.can_see("v"), admin.can_see("v")) == (True, False, True)


def test_list_valued_role_is_refused_as_unauthorized():
    with pytest.raises(Unauthorized, match=r"must be one of viewer, researcher, admin, was \[.admin.\]"):
        decode_token(_token(role=["admin"]), SETTINGS)


def test_token_living_longer_than_the_maximum_is_refused_with_its_lifetime():
    now = int(time.time())
    settings = GatewaySettings(jwt_secret=SECRET, jwt_max_lifetime_s=3600)

    assert decode_token(_token(iat=now, exp=now + 3600), settings).user_id == "alice"
    with pytest.raises(Unauthorized, match="lifetime must be at most 3600 s, was 3601 s"):
        decode_token(_token(iat=now, exp=now + 3601), settings)


def test_token_without_iat_is_refused_when_it_expires_beyond_the_maximum_from_now():
    now = int(time.time())
    settings = GatewaySettings(jwt_secret=SECRET, jwt_max_lifetime_s=3600, jwt_leeway_s=10)

    assert decode_token(_token(exp=now + 3600), settings).user_id == "alice"
    with pytest.raises(Unauthorized, match="lifetime must be at most 3600 s"):
        decode_token(_token(exp=now + 10 * 365 * 86400), settings)


def test_default_maximum_lifetime_accepts_the_cli_default_of_24h_and_refuses_a_year():
    now = int(time.time())

    assert decode_token(_token(iat=now, exp=now + 86400), SETTINGS).user_id == "alice"
    with pytest.raises(Unauthorized, match="lifetime must be at most"):
        decode_token(_token(iat=now, exp=now + 365 * 86400), SETTINGS)
