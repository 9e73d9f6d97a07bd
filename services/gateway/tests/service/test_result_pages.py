"""GET /backtest/results pages trades and equity points: each answer is bounded, all pages give it all."""

from __future__ import annotations

import pytest
from backtest_core.model.config import BacktestConfig
from backtest_core.model.results import BacktestResult
from backtest_core.model.trade_log import PACKED
from backtest_gateway.result_pages import TRADES_PAGE_DEFAULT, TRADES_PAGE_MAX
from backtest_testinfra import make_large_result
from gateway_testdata import finished

pytestmark = pytest.mark.service

TASK = "cd" * 16
CONFIG = BacktestConfig(strategy="sma_cross", symbols=["BTCUSD", "ETHUSD"])


@pytest.fixture
def large(gateway) -> BacktestResult:
    """A stored SUCCESS task of alice with 12,345 trades and 7,000 equity points, trades packed."""
    result = make_large_result(CONFIG, trades=12_345, equity_points=7_000)
    stored = result.model_dump(mode="json", context=PACKED)  # as the results writer stores it
    gateway.store.put(finished(TASK, "alice", stored))
    return result


def test_results_answer_the_first_page_of_trades_with_totals_and_next_offsets(gateway, make_token, large):
    response = gateway.client.get(
        f"/backtest/results/{TASK}", headers={"Authorization": f"Bearer {make_token()}"}
    )

    body = response.json()
    assert response.status_code == 200
    assert len(body["result"]["trades"]) == TRADES_PAGE_DEFAULT == 1000
    assert len(body["result"]["equity_curve"]) == 5000
    assert body["page"] == {
        "trades_total": 12_345,
        "trades_offset": 0,
        "trades_next_offset": 1000,
        "equity_total": 7000,
        "equity_offset": 0,
        "equity_next_offset": 5000,
    }
    assert body["result"]["metrics"]["trade_count"] == 12_345
    first = large.trades[0].model_dump(mode="json")
    assert body["result"]["trades"][0] == first


def test_paging_with_the_largest_page_returns_every_trade_and_point_once_in_order(gateway, make_token, large):
    headers = {"Authorization": f"Bearer {make_token()}"}
    trades, equity, query = [], [], {"trades_offset": 0, "trades_limit": TRADES_PAGE_MAX, "equity_offset": 0}
    pages = 0
    while True:
        body = gateway.client.get(f"/backtest/results/{TASK}", params=query, headers=headers).json()
        pages += 1
        trades += body["result"]["trades"]
        equity += (
            body["result"]["equity_curve"] if body["page"]["equity_offset"] == query["equity_offset"] else []
        )
        page = body["page"]
        if page["trades_next_offset"] is None and page["equity_next_offset"] is None:
            break
        query["trades_offset"] = page["trades_next_offset"] or page["trades_total"]
        query["equity_offset"] = page["equity_next_offset"] or page["equity_total"]

    assert pages == 3  # 12,345 trades in pages of 5,000
    assert len(trades) == 12_345 and len(equity) == 7000
    assert trades == [t.model_dump(mode="json") for t in large.trades]
    assert equity == [p.model_dump(mode="json") for p in large.equity_curve]


@pytest.mark.parametrize(
    ("query", "field"),
    [({"trades_limit": TRADES_PAGE_MAX + 1}, "trades_limit"), ({"trades_offset": -1}, "trades_offset")],
)
def test_a_page_outside_the_bounds_is_422_naming_the_parameter(gateway, make_token, large, query, field):
    response = gateway.client.get(
        f"/backtest/results/{TASK}", params=query, headers={"Authorization": f"Bearer {make_token()}"}
    )

    assert response.status_code == 422
    assert field in response.json()["error"]["field"]
