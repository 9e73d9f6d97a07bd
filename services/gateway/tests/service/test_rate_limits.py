"""Per-user rate limits answer 429 with Retry-After, per bucket and per user, and refill with time."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.service

CONFIG = {"strategy": "sma_cross", "symbols": ["BTCUSD"]}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_submissions_past_the_burst_are_429_with_retry_after(gateway, make_token, settings):
    headers = auth(make_token("alice"))
    codes = [
        gateway.client.post("/backtest/submit", json=CONFIG, headers=headers).status_code
        for _ in range(settings.submit_burst + 1)
    ]

    assert codes == [202] * settings.submit_burst + [429]
    refused = gateway.client.post("/backtest/submit", json=CONFIG, headers=headers)
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.headers["retry-after"] == str(round(60 / settings.submit_rate_per_min))
    assert len(gateway.published.submits) == settings.submit_burst
    other = gateway.client.post("/backtest/submit", json=CONFIG, headers=auth(make_token("bob")))
    assert other.status_code == 202
    gateway.clock.advance(60 / settings.submit_rate_per_min)
    assert gateway.client.post("/backtest/submit", json=CONFIG, headers=headers).status_code == 202


def test_reads_past_the_burst_are_429_on_rest_and_graphql(gateway, make_token, settings):
    headers = auth(make_token("alice", "viewer"))
    for _ in range(settings.read_burst):
        assert gateway.client.get("/backtest/list", headers=headers).status_code == 200

    rest = gateway.client.get("/strategy/list", headers=headers)
    graphql = gateway.client.post("/graphql", json={"query": "{ backtests { total } }"}, headers=headers)

    assert (rest.status_code, rest.headers["retry-after"]) == (429, "1")
    assert graphql.status_code == 429
