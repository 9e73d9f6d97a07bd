"""GraphQL cost is bounded: aliases and list sizes; a trades page is decoded off the event loop."""

from __future__ import annotations

import pytest
from backtest_core.model.config import BacktestConfig
from backtest_core.model.trade_log import PACKED
from backtest_gateway.result_pages import TRADES_PAGE_MAX
from backtest_testinfra import make_large_result
from gateway_testdata import finished

pytestmark = pytest.mark.service

TASK = "cd" * 16
CONFIG = BacktestConfig(strategy="sma_cross", symbols=["BTCUSD", "ETHUSD"])


@pytest.fixture
def headers(gateway, make_token) -> dict[str, str]:
    result = make_large_result(CONFIG, trades=12_345, equity_points=10)
    gateway.store.put(finished(TASK, "alice", result.model_dump(mode="json", context=PACKED)))
    return {"Authorization": f"Bearer {make_token()}"}


def _post(gateway, text: str, headers: dict[str, str]):
    return gateway.client.post("/graphql", json={"query": text}, headers=headers)


def test_thirty_aliases_of_a_backtests_trades_are_refused_before_any_is_resolved(gateway, headers):
    aliases = " ".join(
        f'a{i}: backtest(taskId: "{TASK}") {{ trades(limit: 5000) {{ pnl }} }}' for i in range(30)
    )

    body = _post(gateway, f"{{ {aliases} }}", headers).json()

    assert body.get("data") is None
    assert "aliases found" in body["errors"][0]["message"]


def test_trades_limit_is_capped_at_the_rest_page_maximum(gateway, headers):
    text = f'{{ backtest(taskId: "{TASK}") {{ trades(limit: 100000, offset: 10) {{ pnl }} }} }}'

    body = _post(gateway, text, headers).json()

    assert len(body["data"]["backtest"]["trades"]) == TRADES_PAGE_MAX == 5000
