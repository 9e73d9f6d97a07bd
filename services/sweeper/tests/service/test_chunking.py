"""How a sweep's trials are grouped into chunks: by estimated cost, evenly, never over 64 trials, and
which chunks go out under the in-flight limit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from backtest_core.model.config import BacktestConfig
from backtest_research.sweep_records import TrialRecord, TrialStatus
from backtest_sweeper.plan import Chunking, chunk_size, chunks_to_send, estimated_bars, moved

from ..conftest import T0, make_sweep

YEAR = {"start": datetime(2023, 1, 1, tzinfo=UTC), "end": datetime(2024, 1, 1, tzinfo=UTC)}


def _sweep(interval: str, grid: list[str], **range_: datetime):  # type: ignore[no-untyped-def]
    record = make_sweep(space=grid)
    config = BacktestConfig.model_validate(
        {"strategy": "sma_cross", "symbols": ["BTCUSDT"], "interval": interval, **range_}
    )
    return record.model_copy(update={"config": config})


def test_the_bars_of_a_range_are_its_span_over_the_interval_and_none_when_it_is_open() -> None:
    assert estimated_bars(_sweep("1m", ["fast=5"], **YEAR).config) == 525_600
    assert estimated_bars(_sweep("1h", ["fast=5"], **YEAR).config) == 8_760
    assert estimated_bars(_sweep("1m", ["fast=5"]).config) is None


def test_a_grid_is_split_evenly_into_the_fewest_chunks_of_its_cost_and_of_64_trials() -> None:
    grid = ["fast=5:50:5", "slow=60:140:10"]  # 10 x 9 = 90 trials
    minute = _sweep("1m", grid, **YEAR)  # 90 x 525,600 = 47.3M bar-trials: 2 chunks of 25M
    assert chunk_size(minute, Chunking()) == 45
    assert chunk_size(minute, Chunking(bar_trials=10_000_000)) == 18  # 5 chunks
    assert chunk_size(_sweep("1h", grid, **YEAR), Chunking()) == 45  # cheap: 2 chunks of <= 64 trials
    assert chunk_size(_sweep("1d", ["fast=5,10"]), Chunking()) == 2  # an open range: by trials alone
    assert chunk_size(minute, Chunking(bar_trials=1)) == 1  # one trial over the cost: one a chunk


def _planned(n: int) -> list[TrialRecord]:
    return [
        TrialRecord(sweep_id="s", user_id="u", id=i, params={}, state=TrialStatus.PLANNED, updated_at=T0)
        for i in range(n)
    ]


def _ids(chunks: list[list[TrialRecord]]) -> list[list[int]]:
    return [[t.id for t in chunk] for chunk in chunks]


def test_whole_chunks_go_out_while_they_fit_and_a_short_one_only_as_the_sweeps_last() -> None:
    assert _ids(chunks_to_send(_planned(7), 3, 6, True, all_planned=False)) == [[0, 1, 2], [3, 4, 5]]
    assert _ids(chunks_to_send(_planned(7), 3, 9, True, all_planned=False)) == [[0, 1, 2], [3, 4, 5]]
    assert _ids(chunks_to_send(_planned(7), 3, 9, True, all_planned=True)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert _ids(chunks_to_send(_planned(7), 3, 2, False, all_planned=True)) == []  # no room: wait
    assert _ids(chunks_to_send(_planned(7), 3, 2, True, all_planned=True)) == [[0, 1, 2]]  # never stall


def test_trials_sent_move_from_planned_to_submitted_in_the_counts() -> None:
    counts = {TrialStatus.PLANNED: 90, TrialStatus.SUCCESS: 3}
    assert moved(counts, 45, TrialStatus.PLANNED, TrialStatus.SUBMITTED) == {
        TrialStatus.PLANNED: 45,
        TrialStatus.SUCCESS: 3,
        TrialStatus.SUBMITTED: 45,
    }
    assert moved(counts, 90, TrialStatus.PLANNED, TrialStatus.SUBMITTED) == {
        TrialStatus.SUCCESS: 3,
        TrialStatus.SUBMITTED: 90,
    }
    assert counts == {TrialStatus.PLANNED: 90, TrialStatus.SUCCESS: 3}  # not changed in place
    with pytest.raises(ValueError, match="91 trials cannot leave PLANNED"):
        moved(counts, 91, TrialStatus.PLANNED, TrialStatus.SUBMITTED)
