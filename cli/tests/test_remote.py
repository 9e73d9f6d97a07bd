"""`backtest submit|status|results|cancel` against the real gateway app served by uvicorn.

NATS is FastStream's in-memory TestNatsBroker; a subscriber plays the scheduler and results writer:
on SubmitBacktest it appends events to the in-memory feed and stores the finished task.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import uvicorn
from backtest_cli.main import main
from backtest_cli.token import create_token
from backtest_core.contracts import (
    BacktestAccepted,
    BacktestFailed,
    BacktestProgressed,
    BacktestStarted,
    BacktestSucceeded,
    CancelBacktest,
    Failure,
    FailureReason,
    Stream,
    Subject,
    SubmitBacktest,
    TaskState,
)
from backtest_core.model.config import BacktestConfig
from backtest_core.model.results import EquityPoint, SymbolMetrics
from backtest_core.model.trade_log import PACKED
from backtest_gateway.main import create_app
from backtest_gateway.ports import TaskRecord
from backtest_gateway.settings import GatewaySettings
from backtest_marketdata.models import IntervalCoverage, Symbol
from backtest_testinfra import make_backtest_result, make_large_result
from faststream.nats import NatsBroker, TestNatsBroker
from gateway_fakes import (
    InMemoryEventFeed,
    InMemoryMarketData,
    InMemoryQuotaStore,
    InMemoryStrategyStore,
    InMemoryTaskStore,
)

SECRET = "remote-secret-0123456789abcdef-0123456"
DAILY = IntervalCoverage(
    first=datetime(2014, 11, 28, tzinfo=UTC),
    last=datetime(2020, 1, 17, tzinfo=UTC),
    count=1877,
    gaps=0,
    missing=0,
)
CATALOG = [
    Symbol(symbol=s, name=s, last_updated=DAILY.last, coverage={"1d": DAILY}) for s in ("BTCUSD", "ETHUSD")
]


@dataclass
class Platform:
    url: str
    store: InMemoryTaskStore
    submits: list[SubmitBacktest]
    cancels: list[CancelBacktest]


FAILS = "momentum"  # the fake scheduler below fails runs of this built-in
STAYS_RUNNING = "donchian_breakout"  # ... and never finishes runs of this one


def _play_scheduler(store: InMemoryTaskStore, feed: InMemoryEventFeed, command: SubmitBacktest) -> None:
    """Emit the events of a run: `momentum` fails, `donchian_breakout` stays running, others succeed."""
    tid, user = command.task_id, command.user_id
    events = [
        BacktestAccepted(task_id=tid, user_id=user, seq=1, config=command.config, cache_key="k"),
        BacktestStarted(task_id=tid, user_id=user, seq=2, attempt=1),
        BacktestProgressed(task_id=tid, user_id=user, seq=3, fraction=0.5, stage="proposals"),
    ]
    state, extra = TaskState.PROGRESS, {}
    if command.config.strategy == FAILS:
        failure = Failure(
            reason=FailureReason.STRATEGY_ERROR, message="ZeroDivisionError", traceback="line 7"
        )
        events.append(BacktestFailed(task_id=tid, user_id=user, seq=4, failure=failure))
        state, extra = TaskState.FAILURE, {"failure": failure}
    elif command.config.strategy != STAYS_RUNNING:
        rows = [
            SymbolMetrics(symbol=s, trade_count=10 - i, win_rate_pct=60.0 - 10 * i, net_pnl=150_000.0 - i,
                          profit_factor=2.0, fees_paid=200.0 - 79 * i, exposure_pct=30.0 + i)
            for i, s in enumerate(command.config.symbols)
        ]  # fmt: skip
        result = make_backtest_result(
            command.config,
            start_equity=1_000_000.0,
            final_equity=1_234_567.89,
            sharpe=1.234,
            trade_count=19,
            bars=730,
            per_symbol=rows,
            equity_curve=[EquityPoint(time=datetime(2020, 1, 1, tzinfo=UTC), equity=1_000_000.0)],
        )
        events.append(BacktestSucceeded(task_id=tid, user_id=user, seq=4, result=result))
        state, extra = TaskState.SUCCESS, {"result": result.model_dump(mode="json", by_alias=True)}
    stored = store.records[tid]
    store.put(stored.model_copy(update={"state": state, "seq": len(events), **extra}))
    for event in events:
        feed.append(event)


@pytest.fixture
async def platform(unused_tcp_port: int) -> AsyncIterator[Platform]:
    settings = GatewaySettings(jwt_secret=SECRET, nats_url="nats://127.0.0.1:1")
    broker = NatsBroker(settings.nats_url)
    store, feed = InMemoryTaskStore(), InMemoryEventFeed()
    submits: list[SubmitBacktest] = []
    cancels: list[CancelBacktest] = []

    @broker.subscriber(Subject.SUBMIT, stream=Stream.COMMANDS.value)
    async def on_submit(command: SubmitBacktest) -> None:
        submits.append(command)
        _play_scheduler(store, feed, command)

    @broker.subscriber(Subject.CANCEL, stream=Stream.COMMANDS.value)
    async def on_cancel(command: CancelBacktest) -> None:
        cancels.append(command)

    app = create_app(
        settings,
        broker=broker,
        store=store,
        feed=feed,
        strategy_store=InMemoryStrategyStore(),
        market=InMemoryMarketData(CATALOG),  # the gateway refuses symbols without candles
        quotas=InMemoryQuotaStore(),
    )
    async with TestNatsBroker(broker):
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=unused_tcp_port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        try:
            yield Platform(f"http://127.0.0.1:{unused_tcp_port}", store, submits, cancels)
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def _token(user: str = "alice", role: str = "researcher") -> str:
    return create_token(user, role, SECRET.encode(), ttl_s=3600)


SUBMIT = ["submit", "--strategy", "sma_cross", "--symbols", "BTCUSD,ETHUSD", "--interval", "1d",
          "--param", "fast=10", "--param", "slow=30", "--start", "2018-01-01"]  # fmt: skip


async def test_submit_follows_progress_and_prints_metrics_json(platform, monkeypatch, capsys):
    monkeypatch.setenv("BACKTEST_TOKEN", _token())

    code = main([*SUBMIT, "--gateway", platform.url, "--json"])

    out = json.loads(capsys.readouterr().out)
    [command] = platform.submits
    assert code == 0
    assert (command.user_id, command.config.symbols) == ("alice", ["BTCUSD", "ETHUSD"])
    assert command.config.params == {"fast": 10, "slow": 30}
    assert command.config.start == datetime(2018, 1, 1, tzinfo=UTC)
    assert out["task_id"] == command.task_id
    assert (out["state"], out["final_equity"], out["trade_count"]) == ("SUCCESS", 1_234_567.89, 19)


async def test_submit_prints_a_metrics_table(platform, capsys):
    code = main([*SUBMIT, "--gateway", platform.url, "--token", _token()])

    out = capsys.readouterr().out
    assert code == 0
    assert "Final equity" in out and "1,234,567.89" in out
    assert "Sharpe (annualised)" in out and "1.234" in out


async def test_submit_and_results_tables_show_the_per_symbol_breakdown_as_run_does(platform, capsys):
    token = ["--gateway", platform.url, "--token", _token()]
    assert main([*SUBMIT, *token]) == 0
    submitted = capsys.readouterr().out
    [command] = platform.submits
    assert main(["results", command.task_id, *token]) == 0
    results = capsys.readouterr().out

    for out in (submitted, results):
        lines = out.splitlines()
        header = lines.index(
            f"{'Symbol':<12}{'Trades':>8}{'Win %':>9}{'Net PnL':>18}{'Fees':>14}{'Exposure %':>12}"
        )
        assert lines[header + 1].split() == ["BTCUSD", "10", "60.00", "150,000.00", "200.00", "30.00"]
        assert lines[header + 2].split() == ["ETHUSD", "9", "50.00", "149,999.00", "121.00", "31.00"]
        assert "Fill / size / short" in out and "next_open / 1 / no" in out


async def test_submit_passes_every_execution_setting_to_the_gateway(platform, capsys):
    settings = ["--fee", "0.0005", "--fill", "close", "--size", "0.5", "--same-bar", "target_first",
                "--max-holding-bars", "10", "--tick-size", "0.01", "--step-size", "0.001",
                "--parallel", "2", "--allow-short", "--slippage-bps", "3", "--cash", "5000"]  # fmt: skip

    code = main([*SUBMIT, *settings, "--gateway", platform.url, "--token", _token(), "--json"])

    [command] = platform.submits
    config = command.config
    assert code == 0, capsys.readouterr().err
    assert (config.fees.maker, config.fees.taker, config.fill, config.size) == (0.0005, 0.0005, "close", 0.5)
    assert (config.same_bar, config.max_holding_bars, config.tick_size, config.step_size) == (
        "target_first",
        10,
        0.01,
        0.001,
    )
    assert (config.parallel_symbols, config.allow_short, config.slippage_bps, config.cash) == (
        2,
        True,
        3.0,
        5000.0,
    )


async def test_submit_shows_no_progress_bar_when_stderr_is_not_a_terminal(platform, capsys):
    assert main([*SUBMIT, "--gateway", platform.url, "--token", _token()]) == 0

    [command] = platform.submits
    assert capsys.readouterr().err == f"submitted {command.task_id}\n"


async def test_list_shows_the_callers_backtests_newest_first(platform, capsys):
    token = ["--gateway", platform.url, "--token", _token()]
    for strategy in (STAYS_RUNNING, "sma_cross"):
        assert main(["submit", "--strategy", strategy, "--symbols", "BTCUSD", "--no-wait", *token]) == 0
    running, done = capsys.readouterr().out.split()
    platform.store.put(TaskRecord(task_id="cd" * 16, user_id="bob", state=TaskState.SUCCESS))

    assert main(["list", *token]) == 0
    table = capsys.readouterr().out.splitlines()
    assert main(["list", "--state", "SUCCESS", "--json", *token]) == 0
    succeeded = json.loads(capsys.readouterr().out)

    assert table[0].split() == ["Task", "State", "Strategy", "Symbols", "Interval", "Created"]
    assert [line.split()[:5] for line in table[1:3]] == [
        [done, "SUCCESS", "sma_cross", "BTCUSD", "1d"],
        [running, "PROGRESS", STAYS_RUNNING, "BTCUSD", "1d"],
    ]
    assert table[3:] == ["backtests 1 to 2 of 2"]
    assert [item["task_id"] for item in succeeded["items"]] == [done]
    assert succeeded["total"] == 1


async def test_list_pages_with_limit_and_offset(platform, capsys):
    token = ["--gateway", platform.url, "--token", _token()]
    for _ in range(3):
        assert main(["submit", "--strategy", STAYS_RUNNING, "--symbols", "BTCUSD", "--no-wait", *token]) == 0
    capsys.readouterr()

    assert main(["list", "--limit", "2", "--offset", "2", *token]) == 0
    table = capsys.readouterr().out.splitlines()

    assert len(table) == 3
    assert table[-1] == "backtests 3 to 3 of 3"


async def test_failed_backtest_exits_1_with_reason_and_traceback(platform, capsys):
    code = main(
        [
            "submit",
            "--strategy",
            FAILS,
            "--symbols",
            "BTCUSD",
            "--gateway",
            platform.url,
            "--token",
            _token(),
        ]
    )

    err = capsys.readouterr().err
    assert code == 1
    assert "ended FAILURE: strategy_error: ZeroDivisionError" in err
    assert "line 7" in err


async def test_status_results_and_cancel_commands(platform, capsys):
    token = ["--gateway", platform.url, "--token", _token()]
    assert main(["submit", "--strategy", STAYS_RUNNING, "--symbols", "BTCUSD", "--no-wait", *token]) == 0
    task_id = capsys.readouterr().out.strip()

    assert main(["status", task_id, "--json", *token]) == 0
    status = json.loads(capsys.readouterr().out)
    assert main(["results", task_id, *token]) == 2
    results_err = capsys.readouterr().err
    assert main(["cancel", task_id, *token]) == 0
    cancel_out = capsys.readouterr().out

    assert (status["state"], status["progress"]) == ("PROGRESS", None)
    assert "HTTP 409 not_finished" in results_err
    assert cancel_out.strip() == f"cancel requested for {task_id} (was PROGRESS)"
    assert [c.task_id for c in platform.cancels] == [task_id]


async def test_validation_error_from_gateway_names_the_field_and_exits_2(platform, capsys):
    code = main(["submit", "--strategy", "sma_cross", "--symbols", "BTCUSD", "--interval", "7m",
                 "--gateway", platform.url, "--token", _token()])  # fmt: skip

    err = capsys.readouterr().err
    assert code == 2
    assert "HTTP 422 validation_error" in err and "(field interval)" in err
    assert platform.submits == []


async def test_bad_token_and_missing_token_exit_2(platform, monkeypatch, capsys):
    monkeypatch.delenv("BACKTEST_TOKEN", raising=False)

    assert main(["status", "ab" * 16, "--gateway", platform.url]) == 2
    assert "a token is needed" in capsys.readouterr().err
    assert main(["status", "ab" * 16, "--gateway", platform.url, "--token", "x.y.z"]) == 2
    assert "HTTP 401 unauthorized" in capsys.readouterr().err


async def test_unreachable_gateway_exits_1(unused_tcp_port, capsys):
    code = main(
        ["status", "ab" * 16, "--gateway", f"http://127.0.0.1:{unused_tcp_port}", "--token", _token()]
    )

    assert code == 1
    assert "cannot reach the gateway" in capsys.readouterr().err


async def test_foreign_task_id_reads_as_not_found(platform, capsys):
    platform.store.put(TaskRecord(task_id="cd" * 16, user_id="bob", state=TaskState.SUCCESS))

    assert main(["results", "cd" * 16, "--gateway", platform.url, "--token", _token()]) == 2
    assert "HTTP 404 task_not_found" in capsys.readouterr().err


async def test_results_json_of_a_many_trade_backtest_holds_every_page(platform, capsys):
    config = BacktestConfig(strategy="sma_cross", symbols=["BTCUSD", "ETHUSD"])
    result = make_large_result(config, trades=12_345, equity_points=7_000)
    stored = result.model_dump(mode="json", context=PACKED)  # as the results writer stores it
    platform.store.put(
        TaskRecord(task_id="ef" * 16, user_id="alice", state=TaskState.SUCCESS, seq=4, result=stored)
    )

    assert main(["results", "ef" * 16, "--gateway", platform.url, "--token", _token(), "--json"]) == 0

    out = json.loads(capsys.readouterr().out)
    assert (len(out["trades"]), len(out["equity_curve"])) == (12_345, 7_000)
    assert out["trades"] == [t.model_dump(mode="json") for t in result.trades]
    assert out["equity_curve"][-1] == result.equity_curve[-1].model_dump(mode="json")
