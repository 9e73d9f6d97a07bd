"""The pure batching rules: which jobs may share a sandbox, grouping, and a fetch's fair share."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from backtest_core.contracts import RunBacktestJob
from backtest_core.model.config import BacktestConfig
from backtest_runner.batching import batch_key, fair_share, group_by_key

CONFIG = BacktestConfig(
    strategy="sma_cross", symbols=["BTCUSDT"], interval="1h", start=datetime(2024, 1, 1, tzinfo=UTC)
)


def _job(user: str = "u1", **config: object) -> RunBacktestJob:
    return RunBacktestJob(
        task_id="a" * 32,
        attempt=1,
        user_id=user,
        config=BacktestConfig.model_validate({**CONFIG.model_dump(), **config}),
        cache_key="k" * 64,
    )


def test_params_symbols_fees_and_attempts_may_differ_within_a_batch() -> None:
    base = batch_key(_job())
    assert batch_key(_job(params={"fast": 3})) == base
    assert batch_key(_job(symbols=["ETHUSDT", "LTCUSDT"])) == base
    assert batch_key(_job(fees={"taker": 0.002, "maker": 0.001})) == base
    assert batch_key(_job().model_copy(update={"attempt": 2})) == base


@pytest.mark.parametrize(
    "other",
    [
        _job(user="u2"),
        _job(strategy="rsi"),
        _job(strategy={"source": "class A: pass"}),
        _job(interval="1d"),
        _job(start=datetime(2024, 1, 2, tzinfo=UTC)),
        _job(end=datetime(2024, 6, 1, tzinfo=UTC)),
    ],
    ids=["user", "builtin", "uploaded code", "interval", "start", "end"],
)
def test_another_user_strategy_interval_or_range_never_shares_a_batch(other: RunBacktestJob) -> None:
    assert batch_key(other) != batch_key(_job())


def test_groups_keep_first_appearance_order_and_a_full_group_starts_another() -> None:
    items = ["a1", "b1", "a2", "a3", "c1", "b2", "a4"]

    assert group_by_key(items, lambda item: item[0], size_max=2) == [
        ["a1", "a2"],
        ["b1", "b2"],
        ["a3", "a4"],
        ["c1"],
    ]
    with pytest.raises(ValueError, match="size_max must be >= 1, was 0"):
        group_by_key(items, lambda item: item[0], size_max=0)


@pytest.mark.parametrize(
    ("pending", "waiting", "limit", "share"),
    [
        (0, 0, 64, 1),
        (200, 0, 64, 64),
        (200, 3, 64, 50),
        (10, 3, 64, 3),
        (7, 1, 64, 4),
        (5, 9, 64, 1),
        (9, 0, 1, 1),
    ],
)
def test_a_fetch_takes_its_share_of_the_pending_jobs_at_least_one_at_most_the_limit(
    pending: int, waiting: int, limit: int, share: int
) -> None:
    assert fair_share(pending, waiting, limit) == share
