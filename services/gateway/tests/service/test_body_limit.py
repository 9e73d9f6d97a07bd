"""Request bodies over request_body_max_bytes are refused with 413 before anything is published."""

from __future__ import annotations

import pytest
from backtest_gateway.settings import GatewaySettings

pytestmark = pytest.mark.service


@pytest.fixture
def settings(settings: GatewaySettings) -> GatewaySettings:
    return settings.model_copy(update={"request_body_max_bytes": 2048})


def test_a_body_over_the_limit_is_413_naming_the_limit(gateway, make_token):
    body = '{"strategy": "sma_cross", "symbols": ["BTCUSD"], "pad": "' + "x" * 3000 + '"}'
    headers = {"Authorization": f"Bearer {make_token()}", "Content-Type": "application/json"}

    response = gateway.client.post("/backtest/submit", content=body, headers=headers)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert "at most 2048 bytes, was 3" in response.json()["error"]["message"]
    assert gateway.published.submits == []


def test_a_streamed_body_without_length_over_the_limit_is_413(gateway, make_token):
    chunks = (b"x" * 1000 for _ in range(5))
    headers = {"Authorization": f"Bearer {make_token()}", "Content-Type": "application/json"}

    response = gateway.client.post("/backtest/submit", content=chunks, headers=headers)

    assert response.status_code == 413
    assert gateway.published.submits == []
