"""Non-finite numbers (Infinity, NaN) in a submission are refused with 422 naming the field."""

from __future__ import annotations

import pytest

from .test_backtests_api import CONFIG, auth

pytestmark = pytest.mark.service


@pytest.mark.parametrize(
    ("fragment", "field"),
    [('"cash": Infinity', "cash"), ('"slippage_bps": NaN', "slippage_bps"), ('"size": -Infinity', "size")],
)
def test_a_non_finite_number_at_submit_is_422_naming_the_field_and_nothing_is_queued(
    gateway, make_token, fragment, field
):
    body = '{"strategy": "sma_cross", "symbols": ["BTCUSD"], "interval": "1d", ' + fragment + "}"

    response = gateway.client.post(
        "/backtest/submit",
        content=body,
        headers={**auth(make_token()), "content-type": "application/json"},
    )

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("validation_error", field)
    assert "finite" in error["message"]
    assert gateway.published.submits == []
    assert gateway.store.records == {}


def test_a_non_finite_strategy_param_at_submit_is_422_naming_the_param(gateway, make_token):
    body = '{"strategy": "sma_cross", "symbols": ["BTCUSD"], "params": {"fast": 10, "slow": NaN}}'

    response = gateway.client.post(
        "/backtest/submit",
        content=body,
        headers={**auth(make_token()), "content-type": "application/json"},
    )

    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"].startswith("params.slow")
    assert gateway.published.submits == []
    assert CONFIG["params"] == {"fast": 10, "slow": 30}
