"""Real candles shipped in the repo, real engine results on them, and stored sweeps and walk-forwards
(with a walk-forward store over a dict), for the gateway's tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from backtest_core.contracts import SweepCounts, SweepState, TaskState
from backtest_core.engine.run import run_backtest
from backtest_core.io.data_files import read_candle_file
from backtest_core.model.candles import Candles
from backtest_core.model.config import BacktestConfig
from backtest_gateway.ports import TaskRecord
from backtest_marketdata.models import IntervalCoverage, Symbol
from backtest_research.search import SweepSearch
from backtest_research.sweep_records import SweepRecord, TrialRecord, TrialStatus
from backtest_research.walkforward_records import (
    FoldRecord,
    FoldState,
    WalkForwardRecord,
    walkforward_folds,
)
from backtest_research.walkforward_stitch import cut_to_test, stitch

REPO = Path(__file__).resolve().parents[3]
KLINES = REPO / "data" / "binance" / "spot" / "monthly" / "klines"
SHIPPED_SYMBOLS = ("BTCUSD", "ETHUSD", "LTCUSD")


@cache
def candles(symbol: str, interval: str = "1d") -> Candles:
    """Every shipped bar of one symbol (Bitstamp daily history as Binance kline CSV)."""
    parts = [read_candle_file(p) for p in sorted((KLINES / symbol / interval).glob("*.csv"))]
    return Candles(
        symbol=symbol,
        interval=interval,
        **{
            c: np.concatenate([getattr(p, c) for p in parts])
            for c in ("open_time", "open", "high", "low", "close", "volume")
        },
    )


def symbol_record(
    symbol: str,
    *,
    type_: str = "spot",
    volume: float | None = None,
    cap: float | None = None,
    active: bool = True,
) -> Symbol:
    """A symbol document with the real coverage of its shipped daily candles."""
    c = candles(symbol)
    first = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(c.open_time[0]) // 1000)
    last = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(c.open_time[-1]) // 1000)
    cover = IntervalCoverage(first=first, last=last, count=len(c), gaps=0, missing=0)
    return Symbol(
        symbol=symbol,
        name=symbol,
        type=type_,
        volume_24h=volume,
        market_cap=cap,
        is_active=active,
        last_updated=datetime(2026, 1, 1, tzinfo=UTC),
        coverage={"1d": cover},
    )


@cache
def result(strategy: str = "sma_cross", symbol: str = "BTCUSD", **params: Any) -> dict[str, Any]:
    """A real BacktestResult (as the results writer stores it) of a built-in over 2017-2019."""
    config = BacktestConfig(
        strategy=strategy,
        params=params,
        symbols=[symbol],
        interval="1d",
        start=datetime(2017, 1, 1, tzinfo=UTC),
        end=datetime(2020, 1, 1, tzinfo=UTC),
    )
    return run_backtest(config, {symbol: candles(symbol)}).model_dump(mode="json", by_alias=True)


def finished(task_id: str, user: str, res: dict[str, Any], minutes: int = 0) -> TaskRecord:
    """A SUCCESS task holding `res`."""
    return TaskRecord(
        task_id=task_id,
        user_id=user,
        state=TaskState.SUCCESS,
        seq=5,
        config=BacktestConfig.model_validate(res["config"]),
        result=res,
        created_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes),
    )


def finished_sweep(
    sweep_id: str, user: str, sharpes: list[float | None]
) -> tuple[SweepRecord, list[TrialRecord]]:
    """A SUCCESS sweep of sma_cross over fast=5,10,... (slow 30) and its trials, trial i of Sharpe
    `sharpes[i]` (None: a FAILURE trial); the best is the highest Sharpe."""
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    fasts = [5 * (i + 1) for i in range(len(sharpes))]
    search = SweepSearch(space=[f"fast={','.join(map(str, fasts))}", "slow=30"])
    trials = [
        TrialRecord(
            sweep_id=sweep_id,
            user_id=user,
            id=i,
            task_id=f"{i + 100:032x}",
            params={"fast": fast, "slow": 30},
            state=TrialStatus.SUCCESS if sharpe is not None else TrialStatus.FAILURE,
            metrics={"sharpe": sharpe, "final_equity": 1000.0 + i} if sharpe is not None else None,
            score=sharpe,
            reason=None if sharpe is not None else "strategy_error: boom",
            updated_at=moment + timedelta(seconds=i),
        )
        for i, (fast, sharpe) in enumerate(zip(fasts, sharpes, strict=True))
    ]
    done = [t for t in trials if t.score is not None]
    best = max(done, key=lambda t: t.score or 0.0)
    record = SweepRecord(
        sweep_id=sweep_id,
        user_id=user,
        state=SweepState.SUCCESS,
        config=BacktestConfig.model_validate({"strategy": "sma_cross", "symbols": ["BTCUSD"]}),
        search=search,
        counts=SweepCounts(
            total=len(trials),
            done=len(done),
            failed=len(trials) - len(done),
            skipped=0,
            cancelled=0,
            running=0,
        ),
        best={"id": best.id, "params": best.params, "metrics": best.metrics, "task_id": best.task_id},
        overfitting={"pbo": 0.25, "deflated_sharpe": 0.5, "psr": 0.9, "trials": len(done)},
        created_at=moment,
        updated_at=moment + timedelta(seconds=len(trials)),
        finished_at=moment + timedelta(seconds=len(trials)),
    )
    return record, trials


class MemoryWalkForwards:
    """WalkForwardStore over a dict."""

    def __init__(self) -> None:
        self.records: dict[str, WalkForwardRecord] = {}

    async def insert(self, record: WalkForwardRecord) -> None:
        self.records[record.walkforward_id] = record

    async def delete_pending(self, walkforward_id: str) -> None:
        self.records.pop(walkforward_id, None)

    async def get(self, walkforward_id: str) -> WalkForwardRecord | None:
        return self.records.get(walkforward_id)

    async def page(self, user_id: str | None, limit: int, offset: int) -> tuple[list[WalkForwardRecord], int]:
        mine = [r for r in self.records.values() if user_id is None or r.user_id == user_id]
        return mine[offset : offset + limit], len(mine)

    async def open_count(self, user_id: str) -> int:
        return sum(r.user_id == user_id and r.finished_at is None for r in self.records.values())


WALKFORWARD_FROM = datetime(2017, 1, 1, tzinfo=UTC)


def running_walkforward(walkforward_id: str, user: str, folds: int = 3) -> WalkForwardRecord:
    """A RUNNING walk-forward of sma_cross, fast=5,10 x slow=20,50 (4 trials a fold), on the shipped
    BTCUSD daily bars from 2017: 365-bar train and 180-bar test windows, its first `folds` folds TRAINING."""
    times = candles("BTCUSD").open_time
    times = times[times >= int(WALKFORWARD_FROM.timestamp()) * 1_000_000_000]
    options, planned = walkforward_folds(walkforward_id, times, "1d", 365, 180)
    config = {"strategy": "sma_cross", "symbols": ["BTCUSD"], "interval": "1d", "start": WALKFORWARD_FROM}
    return WalkForwardRecord(
        walkforward_id=walkforward_id,
        user_id=user,
        state=SweepState.RUNNING,
        config=BacktestConfig.model_validate(config),
        search=SweepSearch(space=["fast=5,10", "slow=20,50"]),
        options=options,
        folds=planned[:folds],
        created_at=WALKFORWARD_FROM,
        updated_at=WALKFORWARD_FROM,
    )


def trained_fold(fold: FoldRecord, fast: int, cash: float) -> FoldRecord:
    """The fold once its sweep chose fast=`fast`, slow=50 (in-sample Sharpe fast / 10, CAGR 2 x fast %),
    TESTING from `cash`."""
    return fold.model_copy(
        update={
            "state": FoldState.TESTING,
            "params": {"fast": fast, "slow": 50},
            "in_sample": {"sharpe": fast / 10, "cagr_pct": 2.0 * fast, "trade_count": 3},
            "cash": cash,
        }
    )


def tested_fold(fold: FoldRecord) -> FoldRecord:
    """The TESTING fold once its test run ended DONE: one trade, its equity 0.1 % up every test bar."""
    assert fold.cash is not None
    times = candles("BTCUSD").open_time
    inside = times[(times >= fold.test_start) & (times < fold.test_end)]
    equity = fold.cash * 1.001 ** np.arange(1, len(inside) + 1)
    test = cut_to_test(fold.cash, inside, equity, fold.window(), "1d", trades=1)
    return fold.model_copy(
        update={
            "state": FoldState.DONE,
            "test_times": [int(t) for t in test.times],
            "test_equity": [float(v) for v in test.equity],
            "out_of_sample": test.metrics,
            "trades": test.trades,
        }
    )


def finished_walkforward(walkforward_id: str, user: str) -> WalkForwardRecord:
    """`running_walkforward` with its folds trained (fast 5, 10, 5) and tested in order, each starting with
    the equity the fold before ended with: SUCCESS with the stitched result."""
    record = running_walkforward(walkforward_id, user)
    folds: list[FoldRecord] = []
    cash = record.config.cash
    for fold, fast in zip(record.folds, (5, 10, 5), strict=True):
        folds.append(tested_fold(trained_fold(fold, fast, cash)))
        cash = folds[-1].test_equity[-1] if folds[-1].test_equity else cash
    result = stitch(record.config, [f.outcome() for f in folds]).as_json()
    moment = WALKFORWARD_FROM + timedelta(hours=1)
    changes = {"folds": folds, "state": SweepState.SUCCESS, "result": result}
    return record.model_copy(update={**changes, "updated_at": moment, "finished_at": moment})
