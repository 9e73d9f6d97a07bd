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

import jwt
import pytest
import uvicorn
from backtest_cli.main import main
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
from backtest_core.results import BacktestResult, EquityPoint, Metrics
from backtest_gateway.adapters.memory import (
    InMemoryEventFeed,
    InMemoryMarketData,
    InMemoryStrategyStore,
    InMemoryTaskStore,
)
from backtest_gateway.main import create_app
from backtest_gateway.ports import TaskRecord
from backtest_gateway.settings import GatewaySettings
from backtest_testinfra import make_backtest_result
from faststream.nats import NatsBroker, TestNatsBroker

SECRET = "remote-secret-0123456789abcdef-0123456"


def _result(config) -> BacktestResult:
    metrics = Metrics(
        start_equity=1_000_000.0, final_equity=1_234_567.89, total_return_pct=23.456789, cagr_pct=11.1,
        sharpe=1.234, sortino=2.0, calmar=1.5, max_drawdown_pct=7.5, max_drawdown_duration_bars=40,
        win_rate_pct=55.0, profit_factor=1.9, expectancy=1234.5, avg_win=5000.0, avg_loss=-2500.0,
        trade_count=19, exposure_pct=42.0, fees_paid=321.0, bars=730, periods_per_year=365.0,
    )  # fmt: skip
    point = EquityPoint(time=datetime(2020, 1, 1, tzinfo=UTC), equity=1_000_000.0)
    return make_backtest_result(config, metrics, equity_curve=[point])


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
        result = _result(command.config)
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
        market=InMemoryMarketData(),
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
    claims = {"sub": user, "role": role, "iss": "backtest-platform", "aud": "backtest-gateway", "exp": 2**31}
    return jwt.encode(claims, SECRET, algorithm="HS256")


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
