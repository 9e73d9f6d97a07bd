"""The MongoDB document of a platform walk-forward: one in `walkforwards` per walk-forward, its folds inside.

The gateway plans the folds (their windows as bar open times, from the stored candles) and inserts the
walk-forward PENDING; the sweeper owns every change after that. Each fold's train window is a sweep of
its own in `sweeps` (`fold_sweep_id`: derived from the walk-forward and the fold), and its test run a
backtest (`fold_test_task_id`), so a resend is the same sweep or task and the result cache answers what
another sweep or walk-forward already ran.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import numpy as np
from backtest_core.contracts import SweepState
from backtest_core.model.config import BacktestConfig, Frozen, UtcDatetime
from pydantic import Field

from backtest_research.search import SweepSearch
from backtest_research.space import Value
from backtest_research.walkforward import fold_windows, parse_length, plan_folds
from backtest_research.walkforward_stitch import FoldOutcome, FoldTest, FoldWindow

Document = dict[str, Any]
WALKFORWARDS_COLLECTION = "walkforwards"
# The runner's default RUNNER_EQUITY_POINTS_MAX: a fold's test run (train + gap + test bars) must come
# back with every bar's equity, so its metrics are the local run's.
TEST_RUN_BARS_MAX = 5000
# Every test window's equity is kept in the walk-forward's one document (at most 16 MiB in MongoDB), per
# fold and in the stitched result: about 75 bytes a bar, so 100,000 test bars are about 7.5 MB.
STITCHED_BARS_MAX = 100_000


def fold_sweep_id(walkforward_id: str, fold: int) -> str:
    """The sweep id of a fold's train window: 32 hex characters, the same every time it is asked."""
    return hashlib.sha256(f"walkforward:{walkforward_id}:fold:{fold}".encode()).hexdigest()[:32]


def fold_test_task_id(walkforward_id: str, fold: int) -> str:
    """The task id of a fold's test run."""
    return hashlib.sha256(f"walkforward:{walkforward_id}:fold:{fold}:test".encode()).hexdigest()[:32]


class FoldState(StrEnum):
    """Where a fold is: its sweep runs, its best params wait for or run their test, or it has ended."""

    TRAINING = "TRAINING"
    TRAINED = "TRAINED"  # the sweep ended with a best trial; the test run waits for the previous fold
    TESTING = "TESTING"
    DONE = "DONE"
    NO_TRIAL = "NO_TRIAL"  # the sweep ended without an eligible trial: no test run (as locally)
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


ENDED_FOLDS = frozenset({FoldState.DONE, FoldState.NO_TRIAL, FoldState.FAILED, FoldState.CANCELLED})


class WalkForwardOptions(Frozen):
    """The fold options as given (bars or durations) and as bars of the interval."""

    train: int | str
    test: int | str
    step: int | str | None = None
    gap: int | str = 0
    anchored: bool = False
    bars: dict[str, int] = Field(description="train, test, step and gap in bars")


class FoldRecord(Frozen):
    """A fold: its windows (open times ns, ends exclusive), its sweep and test task, what they gave."""

    number: int = Field(ge=0)
    sweep_id: str
    test_task_id: str
    train_start: int
    train_end: int
    test_start: int
    test_end: int
    test_bars: int = Field(ge=1, description="bars of the test window on the symbols' grid")
    state: FoldState = FoldState.TRAINING
    params: dict[str, Value] | None = None
    in_sample: dict[str, Any] | None = None
    cash: float | None = None  # the equity the test run starts with
    test_times: list[int] | None = None
    test_equity: list[float] | None = None
    out_of_sample: dict[str, Any] | None = None
    trades: int = 0
    failure: str | None = None

    def window(self) -> FoldWindow:
        """The fold's windows."""
        return FoldWindow(self.train_start, self.train_end, self.test_start, self.test_end)

    def outcome(self) -> FoldOutcome:
        """What the shared stitching reads of the fold."""
        test = None
        if self.state is FoldState.DONE and self.test_times is not None and self.test_equity is not None:
            test = FoldTest(
                np.array(self.test_times, dtype=np.int64),
                np.array(self.test_equity, dtype=np.float64),
                self.out_of_sample or {},
                self.trades,
            )
        return FoldOutcome(self.window(), self.params, self.in_sample, test)

    def status(self) -> dict[str, Any]:
        """The fold as `GET /walkforward/{id}` shows it."""
        return {
            "fold": self.number,
            "state": self.state.value,
            "sweep_id": self.sweep_id,
            "test_task_id": self.test_task_id if self.cash is not None else None,
            **self.window().as_json(),
            "params": self.params,
            "failure": self.failure,
        }


class WalkForwardRecord(Frozen):
    """A walk-forward's document (without `_id`, which is `walkforward_id`)."""

    walkforward_id: str
    user_id: str
    state: SweepState
    config: BacktestConfig
    search: SweepSearch
    options: WalkForwardOptions
    folds: list[FoldRecord] = Field(min_length=1)
    result: dict[str, Any] | None = None  # set at SUCCESS: the JSON of `backtest walkforward --json`
    failure: str | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    finished_at: UtcDatetime | None = None

    def counts(self) -> dict[str, int]:
        """Folds in all and ended."""
        return {"total": len(self.folds), "done": sum(f.state in ENDED_FOLDS for f in self.folds)}


_TIMES = ("created_at", "updated_at", "finished_at")


def walkforward_document(record: WalkForwardRecord) -> Document:
    """A walk-forward as stored: `_id` the id, timestamps as dates."""
    document = record.model_dump(mode="json")
    document |= {name: getattr(record, name) for name in _TIMES}
    document["_id"] = record.walkforward_id
    return document


def read_walkforward(document: Mapping[str, Any]) -> WalkForwardRecord:
    """The record of a stored walk-forward."""
    return WalkForwardRecord.model_validate({k: v for k, v in document.items() if k != "_id"})


def walkforward_folds(
    walkforward_id: str,
    times: np.ndarray,
    interval: str,
    train: int | str,
    test: int | str,
    step: int | str | None = None,
    gap: int | str = 0,
    anchored: bool = False,
) -> tuple[WalkForwardOptions, list[FoldRecord]]:
    """The folds over the bar grid `times` (ns) as `backtest walkforward` plans them; SpaceError naming
    the option when a length does not read or no fold fits."""
    bars = {
        "train": parse_length(str(train), interval, "train"),
        "test": parse_length(str(test), interval, "test"),
        "gap": parse_length(str(gap), interval, "gap"),
    }
    bars["step"] = parse_length(str(step), interval, "step") if step is not None else bars["test"]
    folds = plan_folds(
        len(times), bars["train"], bars["test"], bars["step"], anchored=anchored, gap=bars["gap"]
    )
    records = [
        FoldRecord(
            number=k,
            sweep_id=fold_sweep_id(walkforward_id, k),
            test_task_id=fold_test_task_id(walkforward_id, k),
            train_start=w.train_start,
            train_end=w.train_end,
            test_start=w.test_start,
            test_end=w.test_end,
            test_bars=fold.test_end - fold.test_start,
        )
        for k, (fold, w) in enumerate(zip(folds, fold_windows(times, folds, interval), strict=True))
    ]
    options = WalkForwardOptions(train=train, test=test, step=step, gap=gap, anchored=anchored, bars=bars)
    return options, records


def test_run_bars(times: np.ndarray, fold: FoldRecord) -> int:
    """Bars of a fold's test run on the grid `times` (ns): from its train window's start to its test's end."""
    return int(np.searchsorted(times, fold.test_end) - np.searchsorted(times, fold.train_start))
