"""`backtest sweep --remote` against the real gateway app served by uvicorn (as in test_remote.py).

NATS is FastStream's in-memory TestNatsBroker and the sweeps live in an in-memory store; a subscriber
plays the sweeper: on SubmitSweep it runs the sweep with backtest_research on the shipped candles (so
the remote result can be compared with `backtest sweep --data` on the same files) and stores each
status the CLI will read in turn. Per built-in: `momentum` sweeps end FAILURE, `donchian_breakout`
sweeps stay RUNNING and the first status read sends this process SIGINT (Ctrl-C) while it polls.
The broker and the server run on their own event loop in a thread, so the tests run on the main thread
with Python's own SIGINT handler.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from backtest_cli.main import main
from backtest_cli.token import create_token
from backtest_core.contracts import CancelSweep, Stream, Subject, SubmitSweep, SweepCounts, SweepState
from backtest_gateway.main import create_app
from backtest_gateway.ports import SweepOrder
from backtest_gateway.settings import GatewaySettings
from backtest_marketdata.models import IntervalCoverage, Symbol
from backtest_research.sweep import run_sweep
from backtest_research.sweep_records import SweepRecord, TrialRecord, TrialStatus, chunk_task_id
from backtest_testinfra import free_port, shipped_candles
from faststream.nats import NatsBroker, TestNatsBroker
from gateway_fakes import (
    InMemoryEventFeed,
    InMemoryMarketData,
    InMemoryQuotaStore,
    InMemoryStrategyStore,
    InMemoryTaskStore,
)

REPO = Path(__file__).resolve().parents[2]
BTC_DIR = REPO / "data" / "binance" / "spot" / "monthly" / "klines" / "BTCUSD" / "1d"
SECRET = "sweep-remote-secret-0123456789abcdef-01"
DAILY = IntervalCoverage(
    first=datetime(2014, 11, 28, tzinfo=UTC), last=datetime(2020, 1, 17, tzinfo=UTC), count=1877, gaps=0,
    missing=0,
)  # fmt: skip
CATALOG = [Symbol(symbol="BTCUSD", name="BTCUSD", last_updated=DAILY.last, coverage={"1d": DAILY})]
FAILS = "momentum"  # the fake sweeper ends sweeps of this built-in FAILURE
STAYS_RUNNING = "donchian_breakout"  # ... and never ends sweeps of this one
GRID = ["--grid", "fast=5:15:5", "--grid", "slow=10,30"]  # 6 trials: fast 10 and 15 >= slow 10 skipped


class FakeSweepStore:
    """The gateway's SweepStore in memory. Each read of a sweep answers the next of its stored statuses
    (the last one again once they are used up), as the sweeper would have moved it in the meantime."""

    def __init__(self) -> None:
        self.statuses: dict[str, list[SweepRecord]] = {}
        self.trial_records: dict[str, list[TrialRecord]] = {}
        self.reads: dict[str, int] = {}
        self.interrupt_at_first_read: set[str] = set()

    def latest(self, sweep_id: str) -> SweepRecord:
        return self.statuses[sweep_id][-1]

    async def insert(self, record: SweepRecord) -> None:
        self.statuses[record.sweep_id] = [record]

    async def delete_pending(self, sweep_id: str) -> None:
        self.statuses.pop(sweep_id, None)

    async def get(self, sweep_id: str) -> SweepRecord | None:
        if sweep_id not in self.statuses:
            return None
        self.reads[sweep_id] = self.reads.get(sweep_id, 0) + 1
        if sweep_id in self.interrupt_at_first_read:
            self.interrupt_at_first_read.discard(sweep_id)
            os.kill(os.getpid(), signal.SIGINT)  # Python raises KeyboardInterrupt in the main thread
        queue = self.statuses[sweep_id]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    async def page(self, user_id: str | None, limit: int, offset: int) -> tuple[list[SweepRecord], int]:
        mine = [self.latest(s) for s in self.statuses if user_id in (None, self.latest(s).user_id)]
        return mine[offset : offset + limit], len(mine)

    async def open_count(self, user_id: str) -> int:
        states = [self.latest(s) for s in self.statuses]
        return sum(
            r.user_id == user_id and r.state in (SweepState.PENDING, SweepState.RUNNING) for r in states
        )

    async def trials(
        self, sweep_id: str, order: SweepOrder, limit: int, offset: int, state: TrialStatus | None
    ) -> tuple[list[TrialRecord], int]:
        found = [t for t in self.trial_records.get(sweep_id, []) if state is None or t.state is state]
        found.sort(key=lambda t: t.id, reverse=order.descending)
        return found[offset : offset + limit], len(found)


def _swept(record: SweepRecord) -> tuple[list[SweepRecord], list[TrialRecord]]:
    """Run the sweep as the sweeper would (here, on the shipped candles); its statuses and trials."""
    search, sweep_id, user = record.search, record.sweep_id, record.user_id
    candles = {symbol: shipped_candles(symbol, record.config.interval) for symbol in record.config.symbols}
    result = run_sweep(record.config, candles, search.planned(), search.ranking(), workers=1)
    chunk = chunk_task_id(sweep_id, range(6))  # the sweeper's one chunk of the 6 trials
    trials = [
        TrialRecord(
            sweep_id=sweep_id, user_id=user, id=t.id, task_id=chunk, params=t.params,
            state=TrialStatus(t.state), metrics=t.metrics, score=result.objective.score(t.metrics or {}),
            reason=t.reason, updated_at=record.created_at,
        )
        for t in result.trials
    ]  # fmt: skip
    counts = result.counts()
    running = record.model_copy(
        update={"state": SweepState.RUNNING, "counts": SweepCounts(total=counts["total"], done=2, running=2)}
    )
    best = result.best
    ended = record.model_copy(
        update={
            "state": SweepState.SUCCESS,
            "counts": SweepCounts(**counts),
            "best": None if best is None else {"id": best.id, "params": best.params, "metrics": best.metrics},
            "overfitting": result.overfitting,
            "finished_at": record.created_at,
        }
    )
    return [running, ended], trials


@dataclass
class Gateway:
    url: str
    sweeps: FakeSweepStore
    commands: list[SubmitSweep | CancelSweep] = field(default_factory=list)
    submitted_bodies: list[dict[str, Any]] = field(default_factory=list)


def _recording_bodies(app: Any, bodies: list[dict[str, Any]]) -> Any:
    """Wrap an ASGI app so that the JSON body of every POST /sweep/submit is kept in `bodies`."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/sweep/submit":
            return await app(scope, receive, send)
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        bodies.append(json.loads(body))
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await app(scope, replay, send)

    return wrapped


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    """Serve the gateway (in-memory stores, TestNatsBroker, a fake sweeper) on a free port in a thread."""
    settings = GatewaySettings(jwt_secret=SECRET, nats_url="nats://127.0.0.1:1")
    broker = NatsBroker(settings.nats_url)
    port = free_port()
    platform = Gateway(f"http://127.0.0.1:{port}", FakeSweepStore())
    sweeps = platform.sweeps

    @broker.subscriber(Subject.SWEEP_SUBMIT, stream=Stream.SWEEP_COMMANDS.value)
    async def on_submit(command: SubmitSweep) -> None:
        platform.commands.append(command)
        record = sweeps.latest(command.sweep_id)
        if record.config.strategy == FAILS:
            failure = "every trial failed: ZeroDivisionError"
            ended = {"state": SweepState.FAILURE, "failure": failure, "finished_at": record.created_at}
            sweeps.statuses[command.sweep_id] = [record.model_copy(update=ended)]
        elif record.config.strategy == STAYS_RUNNING:
            sweeps.statuses[command.sweep_id] = [record.model_copy(update={"state": SweepState.RUNNING})]
            sweeps.interrupt_at_first_read.add(command.sweep_id)
        else:
            sweeps.statuses[command.sweep_id], sweeps.trial_records[command.sweep_id] = _swept(record)

    @broker.subscriber(Subject.SWEEP_CANCEL, stream=Stream.SWEEP_COMMANDS.value)
    async def on_cancel(command: CancelSweep) -> None:
        platform.commands.append(command)

    app = create_app(
        settings,
        broker=broker,
        store=InMemoryTaskStore(),
        feed=InMemoryEventFeed(),
        strategy_store=InMemoryStrategyStore(),
        market=InMemoryMarketData(CATALOG),
        quotas=InMemoryQuotaStore(),
        sweeps=sweeps,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            _recording_bodies(app, platform.submitted_bodies),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )

    async def serve() -> None:
        async with TestNatsBroker(broker):
            await server.serve()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield platform
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _token(user: str = "alice", role: str = "researcher") -> str:
    return create_token(user, role, SECRET.encode(), ttl_s=3600)


def remote(gateway: Gateway, *args: str) -> list[str]:
    """`backtest sweep --remote` on BTCUSD daily with `args`, to `gateway` as alice."""
    return ["sweep", "--remote", "--symbols", "BTCUSD", "--interval", "1d", *args,
            "--gateway", gateway.url, "--token", _token()]  # fmt: skip


def _without_task_fields(trial: dict[str, Any] | None) -> dict[str, Any] | None:
    """A platform trial as the local contract has it (no `task_id`, no `cached`)."""
    if trial is None:
        return None
    return {key: value for key, value in trial.items() if key not in ("task_id", "cached")}


# --- options ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", str(BTC_DIR)], "option --data: not with --remote: the platform reads its own candles"),
        (["--returns", "out.csv"], "option --returns: not with --remote"),
        (["--workers", "2"], "option --workers: not with --remote"),
        (["--symbol", "BTCUSD"], "option --symbol: not with --remote"),
    ],
)
def test_remote_refuses_the_options_of_a_local_sweep_naming_them(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["sweep", "--remote", "--symbols", "BTCUSD", *GRID, *args, "--token", _token()]
    code = main([*argv, "--gateway", "http://127.0.0.1:1"])

    assert code == 2
    assert message in capsys.readouterr().err


def test_remote_needs_symbols_and_a_token(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.delenv("BACKTEST_TOKEN", raising=False)

    assert main(["sweep", "--remote", *GRID, "--token", _token()]) == 2
    assert "option --symbols: --remote needs the symbols to sweep" in capsys.readouterr().err
    assert main(["sweep", "--remote", "--symbols", "BTCUSD", *GRID, "--gateway", "http://127.0.0.1:1"]) == 2
    assert "option --token: a token is needed" in capsys.readouterr().err


def test_a_local_sweep_without_data_names_data_and_one_with_symbols_names_symbols(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["sweep", *GRID]) == 2
    assert "backtest sweep: option --data: the candle files, folders or globs" in capsys.readouterr().err
    assert main(["sweep", "--data", str(BTC_DIR), "--symbols", "BTCUSD", *GRID]) == 2
    assert "option --symbols: only with --remote" in capsys.readouterr().err


def test_a_bad_search_is_refused_before_anything_is_sent(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sweep", "--remote", "--symbols", "BTCUSD", "--grid", "fast=5,10", "--method", "random",
                 "--gateway", "http://127.0.0.1:1", "--token", _token()])  # fmt: skip

    assert code == 2
    assert "random search needs --trials N" in capsys.readouterr().err


# --- against the gateway ----------------------------------------------------------------------------


def test_the_submission_is_the_submit_config_plus_the_search_of_the_options(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    options = ["--grid", "fast=5:15:5", "--param", "slow=30", "--method", "random", "--trials", "4",
               "--seed", "7", "--objective", "sortino:max", "--min-trades", "3", "--pbo-splits", "8",
               "--start", "2018-01-01", "--fee", "0.0005", "--cash", "5000", "--allow-short"]  # fmt: skip

    assert main(remote(gateway, *options, "--json")) == 0, capsys.readouterr().err

    [body] = gateway.submitted_bodies
    assert body == {
        "strategy": "sma_cross",
        "symbols": ["BTCUSD"],
        "interval": "1d",
        "params": {"slow": 30},
        "start": "2018-01-01T00:00:00+00:00",
        "cash": 5000.0,
        "allow_short": True,
        "fees": {"maker": 0.0005, "taker": 0.0005},
        "search": {
            "space": ["fast=5:15:5"],
            "method": "random",
            "trials": 4,
            "seed": 7,
            "objective": "sortino:max",
            "min_trades": 3,
            "pbo_splits": 8,
        },
    }
    [command] = gateway.commands
    stored = gateway.sweeps.latest(command.sweep_id)
    assert (command.user_id, stored.config.params, stored.config.cash) == ("alice", {"slow": 30}, 5000.0)


def test_remote_json_is_the_result_document_and_equals_the_local_sweep_of_the_same_candles(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sweep", "--data", str(BTC_DIR), *GRID, "--workers", "1", "--no-progress", "--json"]) == 0
    local = json.loads(capsys.readouterr().out)

    code = main(remote(gateway, *GRID, "--json"))

    out, err = capsys.readouterr()
    remote_doc = json.loads(out)
    [command] = gateway.commands
    assert code == 0, err
    assert err == f"submitted sweep {command.sweep_id} (6 trials)\n"  # no bar: stderr is not a terminal
    assert gateway.sweeps.reads[command.sweep_id] == 3  # RUNNING, SUCCESS (finished_at set), the result
    assert (remote_doc["sweep_id"], remote_doc["state"], remote_doc["failure"]) == (
        command.sweep_id,
        "SUCCESS",
        None,
    )
    assert [_without_task_fields(t) for t in remote_doc["trials"]] == local["trials"]
    assert remote_doc["trials"][0]["task_id"] == chunk_task_id(command.sweep_id, range(6))
    assert _without_task_fields(remote_doc["best"]) == local["best"]
    for key in ("overfitting", "objective", "counts"):
        assert remote_doc[key] == local[key], key
    assert remote_doc["counts"] == {"total": 6, "done": 4, "failed": 0, "skipped": 2}


def test_remote_table_is_the_local_sweeps_table(gateway: Gateway, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "--data", str(BTC_DIR), *GRID, "--workers", "1", "--no-progress"]) == 0
    local = capsys.readouterr().out

    assert main(remote(gateway, *GRID, "--no-progress")) == 0
    table = capsys.readouterr().out

    assert table == local
    assert table.startswith("Trials 6: 4 done, 0 failed, 2 skipped; objective sharpe max")


def test_a_failed_sweep_exits_1_with_its_failure_on_stderr(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(remote(gateway, "--strategy", FAILS, "--grid", "period=10,20"))

    out, err = capsys.readouterr()
    [command] = gateway.commands
    assert code == 1
    assert out == ""
    assert f"sweep {command.sweep_id} ended FAILURE (0 of 2 trials done): every trial failed" in err


def test_ctrl_c_while_following_cancels_the_sweep_and_exits_130(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(remote(gateway, "--strategy", STAYS_RUNNING, "--grid", "entry_window=10,20"))

    err = capsys.readouterr().err
    submit, cancel = gateway.commands
    assert code == 130
    assert isinstance(cancel, CancelSweep) and cancel.sweep_id == submit.sweep_id
    assert f"backtest sweep: interrupted; sweep {submit.sweep_id} cancelled" in err


def test_a_request_the_gateway_refuses_exits_2_naming_the_field(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(remote(gateway, *GRID, "--interval", "7m"))

    err = capsys.readouterr().err
    assert code == 2
    assert "HTTP 422 validation_error" in err and "(field interval)" in err
    assert gateway.commands == []
