"""The self-contained HTML report: drawdown series by hand, every section present, no network."""

from __future__ import annotations

import re
from datetime import timedelta

import numpy as np
from backtest_core.io.report_html import config_fingerprint, drawdown_pct, render_report
from backtest_core.metrics.performance import max_drawdown
from backtest_core.model.config import BacktestConfig
from backtest_core.model.results import BacktestResult, PeriodReturn
from backtest_testinfra import make_large_result


def test_drawdown_is_the_fall_below_the_running_peak() -> None:
    equity = np.array([100.0, 120.0, 90.0, 108.0, 130.0, 117.0])
    np.testing.assert_allclose(drawdown_pct(equity), [0.0, 0.0, -25.0, -10.0, 0.0, -10.0], rtol=0, atol=1e-12)
    fall, _ = max_drawdown(equity)
    assert abs(-drawdown_pct(equity).min() - fall) < 1e-9


CONFIG = BacktestConfig.model_validate({"strategy": "sma_cross", "symbols": ["BTCUSD", "ETHUSD"]})


def result(trades: int = 3) -> BacktestResult:
    """`trades` trades and 50 daily equity points that rise and fall: 1000 + (i % 7) x 10."""
    return make_large_result(
        CONFIG, trades, equity_points=50, step=timedelta(days=1), equity=lambda i: 1000.0 + (i % 7) * 10
    )


def test_report_holds_charts_metrics_trades_config_and_fingerprint() -> None:
    res = result()
    page = render_report(
        res, title="sma_cross run", data={"BTCUSD": {"bars": 50}}, explanations={"sharpe": "ratio"}
    )
    assert page.startswith("<!doctype html>") and page.endswith("</html>")
    assert page.count("<svg") == 2 and page.count("<polyline") == 2
    assert f'data-metric="trade_count">{res.metrics.trade_count}<' in page
    assert 'title="ratio"><span>sharpe</span>' in page
    assert (
        "Trades (3)" in page
        and page.count("<tr><td>BTCUSD</td><td>long</td>") + page.count("<tr><td>ETHUSD</td><td>long</td>")
        == 3
    )
    assert config_fingerprint(res) in page and len(config_fingerprint(res)) == 64
    assert "&quot;strategy&quot;" in page and "@media print" in page and "&quot;bars&quot;: 50" in page


def test_report_loads_nothing_from_outside() -> None:
    page = render_report(result(), title="x")
    assert not re.search(r"""(src|href)\s*=|<script|@import|url\(|https?://""", page)


def test_large_trade_logs_are_cut_at_ten_thousand_rows_and_say_so() -> None:
    page = render_report(result(trades=10_005), title="big")
    assert "First 10,000 of 10,005 trades." in page
    assert page.count("</tr>") == 1 + 10_000 + 1 + 0  # trades header + rows + per-symbol header


def test_report_tables_each_months_return_under_its_year() -> None:
    # Two months of 2019 (Nov +10 %, Dec -5 %) and one of 2020 whose return is undefined.
    months = [
        PeriodReturn(period="2019-11", return_pct=10.0),
        PeriodReturn(period="2019-12", return_pct=-5.0),
        PeriodReturn(period="2020-01", return_pct=None),
    ]
    years = [PeriodReturn(period="2019", return_pct=4.5), PeriodReturn(period="2020", return_pct=None)]
    res = result().model_copy(update={"monthly_returns": months, "yearly_returns": years})
    page = render_report(res, title="x")
    assert "<h2>Returns by month and year %</h2>" in page
    blank = "<td></td>"
    assert (
        f'<tr><td>2019</td>{blank * 10}<td class="pos">10.00</td><td class="neg">-5.0000</td>'
        '<td class="pos">4.5000</td></tr>'
    ) in page
    assert f"<tr><td>2020</td><td>—</td>{blank * 11}<td>—</td></tr>" in page
    assert "Returns by month" not in render_report(result(), title="x")  # none given: no table
