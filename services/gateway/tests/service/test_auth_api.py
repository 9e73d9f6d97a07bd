"""Authentication failures answer 401 in the one error shape, before anything is published."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.service

CONFIG = {"strategy": "sma_cross", "symbols": ["BTCUSD"]}


def submit(gateway, headers):
    return gateway.client.post("/backtest/submit", json=CONFIG, headers=headers)


def test_no_token_is_401_with_bearer_challenge(gateway):
    response = submit(gateway, {})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"
    assert "missing bearer token" in response.json()["error"]["message"]
    assert gateway.published.submits == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"secret": "another-secret-0123456789abcdef-012345"}, "signature is invalid"),
        ({"exp": int(time.time()) - 3600}, "token expired"),
        ({"aud": "someone-else"}, "audience must be 'backtest-gateway'"),
        ({"iss": "mallory"}, "issuer must be 'backtest-platform'"),
        ({"exp": None}, "exp"),
        ({"role": "superuser"}, "role` must be one of"),
        ({"role": ["admin"]}, "role` must be one of viewer, researcher, admin, was ['admin']"),
        ({"exp": int(time.time()) + 400 * 86400}, "lifetime must be at most"),
        ({"user": ""}, "sub"),
    ],
    ids=[
        "bad-signature",
        "expired",
        "wrong-audience",
        "wrong-issuer",
        "no-expiry",
        "bad-role",
        "list-role",
        "too-long-lived",
        "no-user",
    ],
)
def test_bad_token_is_401_naming_the_problem(gateway, make_token, overrides, message):
    response = submit(gateway, {"Authorization": f"Bearer {make_token(**overrides)}"})

    assert response.status_code == 401
    assert message in response.json()["error"]["message"]
    assert gateway.published.submits == []


def test_non_bearer_scheme_is_401(gateway, make_token):
    response = gateway.client.get("/backtest/list", headers={"Authorization": f"Basic {make_token()}"})

    assert response.status_code == 401


def test_none_algorithm_token_is_401(gateway):
    import jwt

    unsigned = jwt.encode(
        {
            "sub": "alice",
            "role": "admin",
            "iss": "backtest-platform",
            "aud": "backtest-gateway",
            "exp": int(time.time()) + 60,
        },
        key=None,
        algorithm="none",
    )

    assert (
        gateway.client.get("/backtest/list", headers={"Authorization": f"Bearer {unsigned}"}).status_code
        == 401
    )
