"""GET /backtest/{id}/report.html: the report of a real result, its owner only."""

from __future__ import annotations

import pytest
from backtest_core.io.report_html import render_report
from backtest_core.model.results import BacktestResult
from gateway_testdata import finished, result

pytestmark = pytest.mark.service

TASK, OTHER = f"{0xC1:032x}", f"{0xC2:032x}"


def test_owner_gets_the_renderers_page_of_the_stored_result(gateway, make_token) -> None:
    stored = result()
    gateway.store.put(finished(TASK, "alice", stored))
    response = gateway.client.get(
        f"/backtest/{TASK}/report.html", headers={"Authorization": f"Bearer {make_token('alice', 'viewer')}"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    expected = render_report(BacktestResult.model_validate(stored), title=f"Backtest {TASK}")
    assert response.text == expected


@pytest.mark.parametrize(("user", "role"), [("mallory", "researcher"), ("root", "admin")])
def test_anyone_else_gets_404(gateway, make_token, user: str, role: str) -> None:
    gateway.store.put(finished(TASK, "alice", result()))
    response = gateway.client.get(
        f"/backtest/{TASK}/report.html", headers={"Authorization": f"Bearer {make_token(user, role)}"}
    )
    assert response.status_code == 404
    assert "alice" not in response.text


def test_unknown_or_anonymous(gateway, make_token) -> None:
    assert gateway.client.get(f"/backtest/{OTHER}/report.html").status_code == 401
    headers = {"Authorization": f"Bearer {make_token('alice')}"}
    assert gateway.client.get(f"/backtest/{OTHER}/report.html", headers=headers).status_code == 404
