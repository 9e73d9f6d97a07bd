"""Symbols and candles over the in-memory market data port, with the repo's real candles."""

from __future__ import annotations

import pytest
from gateway_testdata import candles, symbol_record

pytestmark = pytest.mark.service


@pytest.fixture
def market(gateway):
    gateway.market.by_name.update(
        {
            "BTCUSD": symbol_record("BTCUSD", volume=9e8, cap=1e12),
            "ETHUSD": symbol_record("ETHUSD", volume=4e8, cap=3e11),
            "LTCUSD": symbol_record("LTCUSD", volume=2e7, cap=None, active=False),
        }
    )
    gateway.market.series[("BTCUSD", "1d")] = candles("BTCUSD")
    return gateway


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_list_pages_and_sorts(market, make_token):
    headers = auth(make_token("val", "viewer"))

    first = market.client.get("/symbol/list?limit=2&sort=volume_24h&descending=true", headers=headers).json()
    second = market.client.get(
        "/symbol/list?limit=2&offset=2&sort=volume_24h&descending=true", headers=headers
    ).json()

    assert [s["symbol"] for s in first["items"]] == ["BTCUSD", "ETHUSD"]
    assert (first["total"], first["next_offset"]) == (3, 2)
    assert [s["symbol"] for s in second["items"]] == ["LTCUSD"]
    assert second["next_offset"] is None


def test_filter_by_activity_volume_and_coverage(market, make_token):
    headers = auth(make_token())

    body = market.client.post(
        "/symbol/filter",
        json={
            "is_active": True,
            "min_volume_24h": 5e8,
            "has_interval": "1d",
            "covers_from": "2015-01-01T00:00:00Z",
        },
        headers=headers,
    ).json()

    assert [s["symbol"] for s in body["items"]] == ["BTCUSD"]


def test_filter_with_unknown_interval_or_field_is_422_naming_it(market, make_token):
    headers = auth(make_token())

    interval = market.client.post("/symbol/filter", json={"has_interval": "7m"}, headers=headers)
    unknown = market.client.post("/symbol/filter", json={"colour": "red"}, headers=headers)

    assert (interval.status_code, interval.json()["error"]["field"]) == (422, "has_interval")
    assert (unknown.status_code, unknown.json()["error"]["field"]) == (422, "colour")


def test_get_symbol_and_missing_symbol(market, make_token):
    headers = auth(make_token())

    found = market.client.get("/symbol/BTCUSD", headers=headers)
    missing = market.client.get("/symbol/XRPUSD", headers=headers)

    assert found.json()["coverage"]["1d"]["count"] == len(candles("BTCUSD"))
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "symbol_not_found")


def test_candles_are_paged_by_limit_with_next_start(market, make_token):
    headers = auth(make_token())
    real = candles("BTCUSD")

    page = market.client.get(
        "/symbol/BTCUSD/candles?interval=1d&start=2018-01-01T00:00:00Z&end=2018-02-01T00:00:00Z&limit=10",
        headers=headers,
    ).json()
    following = market.client.get(
        f"/symbol/BTCUSD/candles?interval=1d&start={page['next_start']}&end=2018-02-01T00:00:00Z&limit=100",
        headers=headers,
    ).json()

    assert len(page["items"]) == 10
    assert page["items"][0]["open_time"].startswith("2018-01-01T00:00:00")
    assert page["next_start"].startswith("2018-01-11T00:00:00")
    assert len(following["items"]) == 21
    assert following["next_start"] is None
    i = int((real.open_time >= 1514764800 * 10**9).argmax())
    assert page["items"][0]["close"] == float(real.close[i])


def test_candles_are_capped_by_the_server(market, make_token, settings):
    page = market.client.get("/symbol/BTCUSD/candles?limit=1000000", headers=auth(make_token())).json()

    assert page["limit"] == settings.candles_max_bars
    assert len(page["items"]) == min(settings.candles_max_bars, len(candles("BTCUSD")))


def test_candles_outside_int64_nanoseconds_are_422_not_500(market, make_token):
    # Found by schemathesis: a year-246 `end` with a -14:14 offset crashed the range conversion.
    response = market.client.get(
        "/symbol/BTCUSD/candles?end=0246-02-10T15%3A52%3A28.5-14%3A14", headers=auth(make_token())
    )

    assert (response.status_code, response.json()["error"]["field"]) == (422, "end")
    assert "must be between 1970-01-01T00:00:00+00:00 and 2262-01-01T00:00:00+00:00" in response.text


def test_gaps_lists_each_run_of_missing_bars_of_one_interval(market, make_token):
    headers = auth(make_token("val", "viewer"))

    body = market.client.get("/symbol/BTCUSD/gaps?interval=1d", headers=headers).json()

    # the shipped BTCUSD daily bars lack 2019-03-20 .. 2019-03-31: 12 days, the next stored bar 2019-04-01
    assert body == {
        "symbol": "BTCUSD",
        "interval": "1d",
        "gaps": [{"start": "2019-03-20T00:00:00Z", "end": "2019-04-01T00:00:00Z", "missing": 12}],
        "missing": 12,
    }
    assert market.client.get("/symbol/ETHUSD/gaps?interval=1h", headers=headers).json()["gaps"] == []


def test_gaps_of_an_unknown_symbol_or_interval_is_404_or_422(market, make_token):
    headers = auth(make_token())

    missing = market.client.get("/symbol/XRPUSD/gaps", headers=headers)
    wrong = market.client.get("/symbol/BTCUSD/gaps?interval=7m", headers=headers)

    assert missing.status_code == 404 and missing.json()["error"]["code"] == "symbol_not_found"
    assert wrong.status_code == 422 and wrong.json()["error"]["field"] == "interval"
