"""Submit checks the symbol catalog: a symbol, interval or range without candles is refused with 422."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.service

CONFIG = {
    "strategy": "sma_cross",
    "params": {"fast": 10, "slow": 30},
    "symbols": ["BTCUSD"],
    "interval": "1d",
}


def submit(gateway, make_token, **changes):
    body = {**CONFIG, **changes}
    return gateway.client.post(
        "/backtest/submit", json=body, headers={"Authorization": f"Bearer {make_token('alice')}"}
    )


def test_unknown_symbol_is_422_naming_it_and_the_symbols_with_that_interval(gateway, make_token):
    response = submit(gateway, make_token, symbols=["BTCUSD", "BTCUSDT"])

    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "no_data",
        "message": "BTCUSDT has no data; symbols with 1d: BTCUSD, ETHUSD, LTCUSD",
        "field": "symbols",
    }
    assert gateway.published.submits == []
    assert gateway.store.records == {}


def test_interval_without_data_is_422_saying_what_the_symbol_has(gateway, make_token):
    response = submit(gateway, make_token, interval="1h")

    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "no_data",
        "message": "1h has no data for BTCUSD; it has 1d from 2014-11-28 to 2020-01-17",
        "field": "interval",
    }


@pytest.mark.parametrize(
    ("bounds", "words"),
    [
        ({"start": "2021-01-01T00:00:00Z"}, "from 2021-01-01 on"),
        ({"end": "2014-01-01T00:00:00Z"}, "before 2014-01-01"),
        (
            {"start": "2010-01-01T00:00:00Z", "end": "2014-11-28T00:00:00Z"},
            "between 2010-01-01 and 2014-11-28",
        ),
    ],
)
def test_range_outside_the_stored_candles_is_422_with_open_bounds_in_words(
    gateway, make_token, bounds, words
):
    response = submit(gateway, make_token, **bounds)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["message"] == f"BTCUSD has no 1d data {words}; it has 1d from 2014-11-28 to 2020-01-17"
    assert (error["code"], error["field"]) == ("no_data", "start")
    assert "None" not in error["message"]


def test_range_overlapping_the_stored_candles_is_accepted(gateway, make_token):
    response = submit(gateway, make_token, start="2020-01-17T00:00:00Z", symbols=["BTCUSD", "ETHUSD"])

    assert response.status_code == 202
    assert len(gateway.published.submits) == 1
