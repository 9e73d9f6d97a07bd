"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against the whole platform
(tests/e2e/conftest.py): sign in, submit from the New-run form and follow it live to SUCCESS, the equity
chart drawn, metrics equal to the API's, compare, the trades CSV, a strategy's syntax error at its line,
a sweep's heatmap, a viewer who cannot submit, another user's run out of reach, and /docs and GraphiQL
(/graphql) drawn with no request off the gateway.

Screenshots: test-artifacts/web/*.png (printed as they are taken)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from backtest_cli.token import create_token
from backtest_core.contracts.accounts import USERS, user_document
from backtest_testinfra.stack import JWT_SECRET, Stack
from playwright.sync_api import Browser, Page

from .web_browser import build_dashboard, chromium, coloured_pixels, screenshot, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "correct horse battery staple"
USERS_ROLES = {"wanda": "researcher", "wesley": "researcher", "vera": "viewer"}
RUN: dict[str, Any] = {
    "strategy": "sma_cross",
    "symbols": ["BTCUSD"],
    "interval": "1d",
    "start": "2018-01-01T00:00:00Z",
    "end": "2020-01-01T00:00:00Z",
}
WAIT_S = 180.0


def _api(platform: Stack, user: str) -> httpx.Client:
    token = create_token(user, USERS_ROLES[user], JWT_SECRET.encode(), ttl_s=3600)
    return httpx.Client(
        base_url=platform.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def _wait_success(http: httpx.Client, task_id: str, platform: Stack) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        status = http.get(f"/backtest/status/{task_id}").json()
        if status["state"] == "SUCCESS":
            return
        assert status["state"] not in {"FAILURE", "CANCELLED"}, f"{status}\n{platform.log_tails(5)}"
        time.sleep(0.3)
    pytest.fail(f"backtest {task_id} did not finish in {WAIT_S} s\n{platform.log_tails()}")


def _wait_page_state(page: Page, want: str, platform: Stack) -> None:
    """Wait until the run page's live state reads `want`; fail with what the page and services showed."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if page.locator("#state").text_content() == want:
            return
        page.wait_for_timeout(200)
    events = page.locator("#events").text_content()
    pytest.fail(f"the page did not show {want} in {WAIT_S} s; events: {events}\n{platform.log_tails(8)}")


def _all_trades(http: httpx.Client, task_id: str) -> list[dict[str, Any]]:
    trades: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        body = http.get(
            f"/backtest/results/{task_id}", params={"trades_offset": offset, "trades_limit": 5000}
        ).json()
        trades += body["result"]["trades"]
        offset = body["page"]["trades_next_offset"]
    return trades


@pytest.fixture(scope="module")
def browser(platform: Stack) -> Iterator[Browser]:
    """The built dashboard's users (argon2 hashes in the users collection) and one headless chromium."""
    build_dashboard()
    platform.db[USERS].insert_many(
        [user_document(name, role, PASSWORD) for name, role in USERS_ROLES.items()]
    )
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def two_runs(platform: Stack) -> list[str]:
    """Two of wanda's finished sma_cross runs (submitted through the API), by task id."""
    with _api(platform, "wanda") as http:
        ids = []
        for fast, slow in ((10, 30), (5, 50)):
            submitted = http.post("/backtest/submit", json={**RUN, "params": {"fast": fast, "slow": slow}})
            assert submitted.status_code == 202, submitted.text
            ids.append(submitted.json()["task_id"])
        for task_id in ids:
            _wait_success(http, task_id, platform)
    return ids


@pytest.fixture(scope="module")
def wanda(browser: Browser, platform: Stack) -> Iterator[Page]:
    """Wanda signed in once (sign-ins are rate limited per name); every test goes on from her page."""
    page = sign_in(browser, platform.gateway_url, "wanda", PASSWORD)
    yield page
    page.context.close()


def test_a_wrong_password_is_refused_on_the_sign_in_page(browser: Browser, platform: Stack) -> None:
    context = browser.new_context(base_url=platform.gateway_url)
    page = context.new_page()
    page.goto("/")
    page.wait_for_selector("form.login")
    page.fill("input[name=username]", "wanda")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    alert = page.locator("form.login [role=alert]")
    alert.wait_for()
    page.wait_for_function("() => document.querySelector('form.login [role=alert]').textContent.length > 0")
    assert "invalid" in alert.inner_text().lower() or "password" in alert.inner_text().lower()
    assert page.evaluate("() => sessionStorage.getItem('backtest.token')") is None
    context.close()


def _context_with_token(browser: Browser, platform: Stack, token: str) -> Any:
    """A fresh browser context whose session holds `token` for wanda, as if she had signed in."""
    context = browser.new_context(base_url=platform.gateway_url)
    context.add_init_script(
        f"sessionStorage.setItem('backtest.token', '{token}');"
        "sessionStorage.setItem('backtest.user', 'wanda\\nresearcher');"
    )
    return context


def test_an_expired_session_goes_back_to_sign_in_saying_why(browser: Browser, platform: Stack) -> None:
    hour_ago = int(time.time()) - 3600
    expired = create_token("wanda", "researcher", JWT_SECRET.encode(), ttl_s=60, now_s=hour_ago)
    context = _context_with_token(browser, platform, expired)
    page = context.new_page()
    page.goto("/#/runs")
    page.wait_for_selector("form.login")
    assert page.inner_text("#signed-out") == "Your session expired: sign in again."
    assert page.evaluate("() => sessionStorage.getItem('backtest.token')") is None
    context.close()


def test_a_session_ends_on_the_page_when_its_token_expires(browser: Browser, platform: Stack) -> None:
    short = create_token("wanda", "researcher", JWT_SECRET.encode(), ttl_s=10)
    context = _context_with_token(browser, platform, short)
    page = context.new_page()
    page.goto("/#/runs")
    page.wait_for_selector("#runs")  # signed in: the list answered
    page.wait_for_selector("form.login", timeout=60_000)  # no click, no request: the page's own timer
    assert page.inner_text("#signed-out") == "Your session expired: sign in again."
    context.close()


def test_a_run_submitted_from_the_form_streams_to_success_and_draws_its_equity(
    wanda: Page, platform: Stack
) -> None:
    wanda.goto("/#/new")
    wanda.select_option("#strategy", "builtin:sma_cross")
    wanda.fill("input[name=param-fast]", "12")
    wanda.fill("input[name=param-slow]", "40")
    wanda.fill("input[name=start]", "2018-01-01")
    wanda.fill("input[name=end]", "2020-01-01")
    screenshot(wanda, "new-run-form")
    wanda.click("#submit")
    wanda.wait_for_url("**/#/run/*")
    task_id = wanda.url.rsplit("/", 1)[1]
    _wait_page_state(wanda, "SUCCESS", platform)
    frames = wanda.locator("#events li").evaluate_all("items => items.map(li => li.dataset.state)")
    assert frames[0] == "PENDING" and frames[-1] == "SUCCESS", frames  # every frame came over the WebSocket
    wanda.wait_for_selector("#result[data-ready]")
    wanda.wait_for_timeout(300)  # the chart paints on the next animation frame
    assert coloured_pixels(wanda, "#equity-chart") > 500
    wanda.wait_for_selector("#candles[data-ready]")
    wanda.wait_for_timeout(300)
    assert coloured_pixels(wanda, "#candles [data-symbol=BTCUSD]") > 500  # candles and trade markers
    assert wanda.locator("#monthly tbody tr").count() == 2  # 2018 and 2019
    screenshot(wanda, "result-page")

    with _api(platform, "wanda") as http:
        body = http.get(f"/backtest/results/{task_id}").json()
    assert body["result"]["config"]["params"] == {"fast": 12, "slow": 40}
    shown = dict(
        wanda.locator("#metrics dd").evaluate_all(
            "dds => dds.map(dd => [dd.dataset.metric, dd.dataset.value])"
        )
    )
    assert {name: json.loads(value) for name, value in shown.items()} == body["result"]["metrics"]
    assert "mean over standard deviation of per-bar returns" in wanda.inner_text("#metrics")  # conventions
    per_symbol = wanda.locator("#per-symbol tbody tr").evaluate_all(
        "rows => rows.map(r => [r.cells[0].textContent, r.cells[1].textContent])"
    )
    assert per_symbol == [[s["symbol"], str(s["trade_count"])] for s in body["result"]["per_symbol"]]


def test_the_apis_422_is_shown_at_the_field_it_names(wanda: Page) -> None:
    wanda.goto("/#/new")
    wanda.select_option("#strategy", "builtin:sma_cross")
    wanda.fill("input[name=size]", "3")
    wanda.click("#submit")
    error = wanda.locator("[data-error-for=size]")
    error.wait_for()
    assert "less than or equal to 1" in error.inner_text()
    assert (
        wanda.evaluate("() => document.querySelector('[data-error-for=size]').previousElementSibling.name")
        == "size"
    )

    wanda.fill("input[name=size]", "1")
    wanda.fill("input[name=param-fast]", "40")
    wanda.fill("input[name=param-slow]", "30")
    wanda.click("#submit")
    error = wanda.locator("[data-error-for=params]")
    error.wait_for()
    assert error.inner_text() == "fast must be < slow, was fast=40, slow=30"
    screenshot(wanda, "new-run-field-error")


def test_two_runs_compare_with_overlaid_equity_and_the_apis_metrics(
    wanda: Page, platform: Stack, two_runs: list[str]
) -> None:
    wanda.goto("/#/runs")
    for task_id in two_runs:
        wanda.check(f"input.pick[value='{task_id}']")
    wanda.click("#compare-selected")
    wanda.wait_for_selector("main[data-ready]")
    wanda.wait_for_timeout(300)
    assert coloured_pixels(wanda, "#compare-chart") > 500
    screenshot(wanda, "compare-page")
    shown = wanda.url.rsplit("/", 1)[1].split(",")  # the runs list's order: newest first
    assert sorted(shown) == sorted(two_runs)
    with _api(platform, "wanda") as http:
        for index, task_id in enumerate(shown):
            metrics = http.get(f"/backtest/results/{task_id}").json()["result"]["metrics"]
            for name in ("total_return_pct", "sharpe", "max_drawdown_pct", "trade_count"):
                cell = wanda.locator(f"#compare-metrics [data-run='{index}'][data-metric='{name}']")
                assert float(cell.get_attribute("data-value") or "nan") == metrics[name]


def test_the_runs_list_shows_the_apis_headline_metrics_and_ranks_runs_by_one(
    wanda: Page, platform: Stack, two_runs: list[str]
) -> None:
    headline = ("total_return_pct", "sharpe", "max_drawdown_pct", "trade_count")
    wanda.goto("/#/runs")
    wanda.wait_for_selector(f"#runs [data-run='{two_runs[0]}'][data-metric='sharpe']")
    with _api(platform, "wanda") as http:
        for task_id in two_runs:
            metrics = http.get(f"/backtest/results/{task_id}").json()["result"]["metrics"]
            for name in headline:
                cell = wanda.locator(f"#runs [data-run='{task_id}'][data-metric='{name}']")
                assert json.loads(cell.get_attribute("data-value") or "") == metrics[name], name
    screenshot(wanda, "runs-list")
    wanda.select_option("#sort", "-sharpe")
    wanda.wait_for_url("**/#/runs/0//-sharpe")
    wanda.wait_for_selector("#runs tbody tr")
    ranked = wanda.locator("#runs [data-metric='sharpe']").evaluate_all(
        "cells => cells.map(c => [c.dataset.run, JSON.parse(c.dataset.value)])"
    )
    assert {task_id for task_id, _ in ranked} >= set(two_runs)
    sharpes = [value for _, value in ranked]
    assert sharpes == sorted(sharpes, reverse=True)
    assert wanda.is_disabled("#state-filter")  # a ranking holds SUCCESS runs only


def test_the_downloaded_trades_csv_has_every_trade_of_the_api(
    wanda: Page, platform: Stack, two_runs: list[str], tmp_path: Path
) -> None:
    task_id = two_runs[0]
    wanda.goto(f"/#/run/{task_id}")
    wanda.wait_for_selector("#result[data-ready]")
    with wanda.expect_download() as download_info:
        wanda.click("#trades-csv")
    path = tmp_path / "trades.csv"
    download_info.value.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    with _api(platform, "wanda") as http:
        trades = _all_trades(http, task_id)
    assert len(rows) == len(trades) > 0
    for row, trade in zip(rows, trades, strict=True):
        assert set(row) == set(trade)
        for key, value in trade.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                assert row[key] == ("" if value is None else str(value)), key
            else:
                assert float(row[key]) == value, key


GRAPHIQL_QUERY = "{ backtests(limit: 20) { total items { taskId state strategyName } } }"


def test_graphiql_from_the_gateway_returns_the_users_backtests_with_the_network_kept_on_loopback(
    wanda: Page, platform: Stack, two_runs: list[str]
) -> None:
    elsewhere: list[str] = []

    def only_loopback(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    wanda.context.route("**/*", only_loopback)
    try:
        wanda.goto("/#/runs")
        wanda.click("header a[href='/graphql']")  # the IDE URL is the endpoint's own, loaded as a page
        wanda.wait_for_url("**/graphql")
        editor = "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror"
        wanda.wait_for_selector(".graphiql-container .graphiql-query-editor .CodeMirror")
        wanda.evaluate(f"(query) => {editor}.setValue(query)", GRAPHIQL_QUERY)
        wanda.click(".graphiql-execute-button")
        result = "document.querySelector('.result-window .CodeMirror')?.CodeMirror.getValue()"
        wanda.wait_for_function(f"() => ({result} ?? '').includes('total')")
        shown = json.loads(wanda.evaluate(f"() => {result}"))
        screenshot(wanda, "graphiql")
    finally:
        wanda.context.unroute("**/*", only_loopback)
    assert elsewhere == []
    with _api(platform, "wanda") as http:
        listed = http.get("/backtest/list", params={"limit": 20}).json()
    found = shown["data"]["backtests"]
    assert found["total"] == listed["total"] >= len(two_runs)
    assert [item["taskId"] for item in found["items"]] == [item["task_id"] for item in listed["items"]]
    assert {item["state"] for item in found["items"] if item["taskId"] in two_runs} == {"SUCCESS"}


def test_the_report_from_the_result_page_the_api_and_the_cli_is_one_self_contained_file(
    wanda: Page, platform: Stack, two_runs: list[str], tmp_path: Path
) -> None:
    task_id = two_runs[0]
    token = create_token("wanda", "researcher", JWT_SECRET.encode(), ttl_s=3600)
    env = {**os.environ, "BACKTEST_GATEWAY": platform.gateway_url, "BACKTEST_TOKEN": token}
    out = tmp_path / "report.html"
    done = subprocess.run(
        [str(Path(sys.executable).parent / "backtest"), "results", task_id, "--report", str(out)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with _api(platform, "wanda") as http:
        served = http.get(f"/backtest/{task_id}/report.html")
    assert served.status_code == 200 and out.read_text() == served.text
    assert "<svg" in served.text and not re.search(r"(src|href)=[\"']?(https?:)?//", served.text)

    wanda.goto(f"/#/run/{task_id}")
    wanda.wait_for_selector("#result[data-ready]")
    with wanda.expect_popup() as popup_info:
        wanda.click("#report")
    report = popup_info.value
    report.wait_for_load_state()
    assert report.title() == f"Backtest {task_id}"
    assert report.locator("svg").count() >= 2  # equity and drawdown
    screenshot(report, "report")
    report.close()


def test_a_strategy_with_a_syntax_error_shows_the_error_at_its_line(wanda: Page, platform: Stack) -> None:
    wanda.goto("/#/strategies")
    wanda.wait_for_selector("#strategy-form")
    source = wanda.input_value("#source")
    lines = source.split("\n")
    bad_line = 12  # the `def decide(...)` line of the template, its colon removed
    assert lines[bad_line - 1].startswith("    def decide")
    lines[bad_line - 1] = lines[bad_line - 1].rstrip(":")
    wanda.fill("input[name=name]", "close_above_open")
    wanda.fill("#source", "\n".join(lines))
    wanda.click("#save-strategy")
    wanda.wait_for_selector(".error-line")
    assert wanda.get_attribute(".error-line", "data-line") == str(bad_line)
    assert f"line {bad_line}" in wanda.inner_text("#strategy-error")
    screenshot(wanda, "strategy-syntax-error")

    wanda.fill("#source", source)
    wanda.click("#save-strategy")
    wanda.wait_for_selector("#versions")
    assert wanda.locator("#versions tbody tr").count() == 1
    with _api(platform, "wanda") as http:
        assert http.get("/strategy/close_above_open").json()["version"] == 1
    wanda.click("#run-strategy")  # the strategy's page links to a new run of it
    wanda.wait_for_selector("#new-run")
    assert wanda.input_value("#strategy") == "user:close_above_open"
    declared = wanda.locator("input[name=param-min_move]")  # read from the source's Param(...)
    assert (declared.get_attribute("type"), declared.get_attribute("min"), declared.input_value()) == (
        "number",
        "0",
        "0",
    )
    assert "smallest close-open move" in wanda.inner_text("#params")


def test_the_data_page_shows_the_apis_coverage_and_gaps_of_each_symbol_and_interval(
    wanda: Page, platform: Stack
) -> None:
    wanda.goto("/#/data")
    wanda.wait_for_selector("#coverage tbody tr")
    shown = wanda.locator("#coverage tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    with _api(platform, "wanda") as http:
        symbols = http.get("/symbol/list", params={"limit": 1000}).json()["items"]
    want = [
        [s["symbol"], interval, c["first"], c["last"], f"{c['count']:,}", str(c["gaps"]), str(c["missing"])]
        for s in symbols
        for interval, c in s["coverage"].items()
    ]
    assert [[row[0], *row[2:]] for row in shown] == want
    assert any(row[0] == "BTCUSD" and row[1] == "1d" for row in want)
    wanda.wait_for_selector("#gaps tbody tr")
    holes = wanda.locator("#gaps tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    # the shipped BTCUSD daily bars lack 2019-03-20 .. 2019-03-31 (12 days)
    assert ["BTCUSD", "1d", "2019-03-20T00:00:00Z", "2019-04-01T00:00:00Z", "12"] in holes
    assert len(holes) == sum(int(row[6]) for row in shown)  # one row per gap the coverage counts
    screenshot(wanda, "data-page")


SLOW_SOURCE = """import time

from backtest_core.strategy import BaseStrategy, Side, Signal


class Sleepy(BaseStrategy):
    \"\"\"Decide nothing, slowly: 0.2 s a bar, so a run lasts minutes unless it is cancelled.\"\"\"

    def get_required_lookback(self):
        return 1

    def decide(self, df, interval, **p):
        time.sleep(0.2)
        return Signal(Side.NO)
"""


def test_a_running_backtest_is_cancelled_from_its_page(wanda: Page, platform: Stack) -> None:
    with _api(platform, "wanda") as http:
        created = http.post("/strategy/create", json={"name": "sleepy", "source": SLOW_SOURCE})
        assert created.status_code == 201, created.text
        submitted = http.post("/backtest/submit", json={**RUN, "strategy": {"user": "sleepy"}})
        assert submitted.status_code == 202, submitted.text
        task_id = submitted.json()["task_id"]
    wanda.goto(f"/#/run/{task_id}")
    wanda.wait_for_selector("#events li[data-state=STARTED]", timeout=WAIT_S * 1000)
    wanda.click("#cancel")
    _wait_page_state(wanda, "CANCELLED", platform)
    assert wanda.is_disabled("#cancel")
    assert wanda.inner_text("#ended") == "ended CANCELLED"
    screenshot(wanda, "run-cancelled")
    with _api(platform, "wanda") as http:
        assert http.get(f"/backtest/status/{task_id}").json()["state"] == "CANCELLED"


def test_a_sweeps_heatmap_is_drawn_from_its_surface(wanda: Page, platform: Stack) -> None:
    search = {"space": ["fast=5,10,15", "slow=30,40,50"], "objective": "sharpe"}
    with _api(platform, "wanda") as http:
        submitted = http.post("/sweep/submit", json={**RUN, "search": search})
        assert submitted.status_code == 202, submitted.text
        sweep_id = submitted.json()["sweep_id"]
        deadline = time.monotonic() + WAIT_S
        while (status := http.get(f"/sweep/{sweep_id}").json())["finished_at"] is None:
            assert time.monotonic() < deadline, platform.log_tails()
            time.sleep(0.5)
    assert status["counts"]["done"] == 9, status
    wanda.goto(f"/#/sweep/{sweep_id}")
    wanda.wait_for_selector("#heatmap[data-drawn='3x3']")
    assert coloured_pixels(wanda, "#heatmap-panel") > 5000
    assert wanda.locator("#trials tbody tr").count() == 9
    assert "Probability of backtest overfitting" in wanda.inner_text("#overfitting")
    statistics = wanda.locator("#overfitting dt").count()
    assert statistics >= 5 and wanda.locator("#overfitting dd").count() == statistics  # one sentence each
    with _api(platform, "wanda") as http:
        trials = http.get(f"/sweep/{sweep_id}/trials", params={"limit": 100}).json()["trials"]
    best = max(trials, key=lambda t: t["metrics"]["sharpe"])
    assert wanda.locator("#best td").first.inner_text() == str(best["id"])
    screenshot(wanda, "sweep-heatmap")

    wanda.select_option("#heatmap-panel select[name=x]", "slow")  # any two params, any metric
    wanda.select_option("#heatmap-panel select[name=y]", "fast")
    wanda.select_option("#heatmap-panel select[name=metric]", "total_return_pct")
    wanda.wait_for_selector("#heatmap[data-axes='slow,fast,total_return_pct']")
    wanda.hover("#heatmap", position={"x": 390, "y": 195})  # the middle cell of 3x3: slow=40, fast=10
    middle = next(t for t in trials if t["params"] == {"fast": 10, "slow": 40})
    info = wanda.locator("#heatmap-info")
    assert info.get_attribute("data-trial") == str(middle["id"])
    assert json.loads(info.get_attribute("data-value") or "") == middle["metrics"]["total_return_pct"]
    screenshot(wanda, "sweep-heatmap-return-slow-by-fast")


WALKFORWARD: dict[str, Any] = {
    **RUN,
    "start": "2017-01-01T00:00:00Z",
    "train": "365d",
    "test": 180,
    "search": {"space": ["fast=5,10", "slow=30,50"], "objective": "sharpe:max"},
}


def test_a_walkforwards_page_draws_its_folds_stitched_curve_and_efficiency(
    wanda: Page, platform: Stack
) -> None:
    with _api(platform, "wanda") as http:
        submitted = http.post("/walkforward/submit", json=WALKFORWARD)
        assert submitted.status_code == 202, submitted.text
        walkforward_id = submitted.json()["walkforward_id"]
        deadline = time.monotonic() + WAIT_S
        while (status := http.get(f"/walkforward/{walkforward_id}").json())["finished_at"] is None:
            assert time.monotonic() < deadline, platform.log_tails()
            time.sleep(0.5)
        assert status["state"] == "SUCCESS", status
        result = http.get(f"/walkforward/{walkforward_id}/result").json()
    wanda.goto("/#/walkforwards")
    wanda.click(f"#walkforwards a[href='#/walkforward/{walkforward_id}']")
    wanda.wait_for_selector("main[data-ready]")
    wanda.wait_for_timeout(300)  # the chart paints on the next animation frame
    assert coloured_pixels(wanda, "#wf-equity") > 500
    assert json.loads(wanda.get_attribute("#efficiency", "data-value") or "") == result["efficiency"]
    assert wanda.locator("#folds tbody tr").count() == len(result["folds"]) >= 2
    for index, fold in enumerate(result["folds"]):
        row = wanda.locator("#folds tbody tr").nth(index)
        assert row.locator("td").nth(3).inner_text() == json.dumps(fold["params"], separators=(",", ":"))
        for side, metrics in (("in", fold["in_sample"]), ("out", fold["out_of_sample"])):
            cell = row.locator(f"[data-side={side}][data-metric=sharpe]")
            assert json.loads(cell.get_attribute("data-value") or "") == metrics["sharpe"]
    pairs = "dds => dds.map(dd => [dd.dataset.metric, dd.dataset.value])"
    shown = dict(wanda.locator("#metrics dd").evaluate_all(pairs))
    assert {name: json.loads(value) for name, value in shown.items()} == result["oos"]["metrics"]
    screenshot(wanda, "walkforward")


def test_a_viewer_cannot_submit(browser: Browser, platform: Stack) -> None:
    page = sign_in(browser, platform.gateway_url, "vera", PASSWORD)
    page.goto("/#/new")
    page.wait_for_selector("#viewer-note")
    assert page.is_disabled("#submit")
    status = page.evaluate(
        """async (run) => (await fetch('/backtest/submit', {method: 'POST', body: JSON.stringify(run),
            headers: {'Content-Type': 'application/json',
                      Authorization: 'Bearer ' + sessionStorage.getItem('backtest.token')}})).status""",
        {**RUN, "params": {"fast": 10, "slow": 30}},
    )
    assert status == 403
    screenshot(page, "viewer-new-run")
    page.context.close()


def test_signing_out_ends_the_session_and_every_page_asks_to_sign_in(
    browser: Browser, platform: Stack
) -> None:
    page = sign_in(browser, platform.gateway_url, "vera", PASSWORD)
    page.click("#sign-out")
    page.wait_for_selector("form.login")
    assert page.evaluate("() => sessionStorage.getItem('backtest.token')") is None
    assert page.locator("#signed-out").count() == 0  # a sign-out of one's own needs no reason
    page.goto("/#/compare")
    page.wait_for_selector("form.login")
    assert page.url.endswith("/#/login")
    page.context.close()


def test_docs_renders_swagger_ui_with_every_request_kept_on_the_gateway(
    browser: Browser, platform: Stack
) -> None:
    context = browser.new_context(base_url=platform.gateway_url, viewport={"width": 1280, "height": 900})
    elsewhere: list[str] = []

    def only_the_gateway(route: Any) -> None:
        if route.request.url.startswith(platform.gateway_url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_gateway)
    page = context.new_page()
    page.goto("/docs")
    page.wait_for_selector(".opblock-summary-path")
    paths = page.locator(".opblock-summary-path").all_text_contents()
    assert "/backtest/submit" in paths and "/sweep/submit" in paths
    assert elsewhere == []
    screenshot(page, "docs")
    context.close()


def test_another_users_run_is_not_reachable_by_url(
    browser: Browser, platform: Stack, two_runs: list[str]
) -> None:
    page = sign_in(browser, platform.gateway_url, "wesley", PASSWORD)
    page.goto(f"/#/run/{two_runs[0]}")
    alert = page.locator("main [role=alert]")
    alert.wait_for()
    assert alert.inner_text() == f"no backtest with task_id '{two_runs[0]}'"
    assert page.locator("#equity-chart").count() == 0
    page.goto(f"/#/compare/{two_runs[0]},{two_runs[1]}")
    page.locator("main [role=alert]").wait_for()
    assert page.locator("#compare-chart").count() == 0
    assert page.locator("#runs tbody tr").count() == 0
    page.context.close()


SLOW_GRID_SOURCE = SLOW_SOURCE.replace(
    "from backtest_core.strategy import BaseStrategy, Side, Signal",
    "from backtest_core.strategy import BaseStrategy, Param, Side, Signal",
).replace(
    "    def get_required_lookback(self):",
    '    params = {"n": Param(1, "unused", minimum=1)}\n\n    def get_required_lookback(self):',
)


def test_a_running_sweep_is_followed_live_and_cancelled_from_its_page(wanda: Page, platform: Stack) -> None:
    with _api(platform, "wanda") as http:
        created = http.post("/strategy/create", json={"name": "sleepy_grid", "source": SLOW_GRID_SOURCE})
        assert created.status_code == 201, created.text
        search = {"space": ["n=1,2,3,4,5,6"], "objective": "sharpe"}
        submitted = http.post(
            "/sweep/submit", json={**RUN, "strategy": {"user": "sleepy_grid"}, "search": search}
        )
        assert submitted.status_code == 202, submitted.text
        sweep_id = submitted.json()["sweep_id"]
    wanda.goto(f"/#/sweep/{sweep_id}")
    wanda.wait_for_selector("#sweep-progress")
    assert wanda.get_attribute("#sweep-progress", "max") == "6"
    wanda.click("#cancel-sweep")
    wanda.wait_for_function(
        "() => document.querySelector('#sweep-state')?.textContent.startsWith('CANCELLED')"
        " && !document.querySelector('#cancel-sweep')",
        timeout=WAIT_S * 1000,
    )
    assert wanda.locator("#trials tbody tr").count() == 6
    screenshot(wanda, "sweep-cancelled")
    with _api(platform, "wanda") as http:
        status = http.get(f"/sweep/{sweep_id}").json()
    assert status["state"] == "CANCELLED" and status["finished_at"] is not None
    assert status["counts"]["cancelled"] + status["counts"]["done"] == 6, status["counts"]
