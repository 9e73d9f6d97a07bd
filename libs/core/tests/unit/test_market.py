"""engine.market: the bars a run reads, prepared once for a chunk's trials and checked against each config."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from backtest_core.engine.market import market_key, prepare_market, shared_market
from backtest_core.engine.run import run_backtest
from backtest_core.errors import DataError
from backtest_core.model.config import BacktestConfig

from .test_strategies import walk

BASE = BacktestConfig(strategy="sma_cross", symbols=["BTCUSDT"], interval="1h")
CANDLES = {"BTCUSDT": walk(400, 3)}


def test_a_market_holds_the_range_union_closes_and_the_benchmark_returns() -> None:
    hours = BASE.model_copy(update={"start": datetime(1970, 1, 1, 10, tzinfo=UTC)})
    market = prepare_market(hours, CANDLES)

    close = CANDLES["BTCUSDT"].close
    assert market.key == (("BTCUSDT",), "1h", 10 * 3_600_000_000_000, None)
    assert len(market.union) == 390 and market.union[0] == 10 * 3_600_000_000_000
    np.testing.assert_array_equal(market.closes[0], close[10:])
    assert market.benchmark_returns[0] == pytest.approx(close[11] / close[10] - 1.0, rel=1e-15)
    assert len(market.benchmark_returns) == 389


def test_trials_sharing_a_market_get_the_results_of_runs_that_prepare_their_own() -> None:
    market = prepare_market(BASE, CANDLES)
    for fast, slow in ((3, 9), (5, 20)):
        config = BASE.with_params({"fast": fast, "slow": slow})
        assert run_backtest(config, CANDLES, market=market) == run_backtest(config, CANDLES)


def test_a_market_of_another_range_or_symbols_is_refused() -> None:
    market = prepare_market(BASE, CANDLES)
    later = BASE.model_copy(update={"start": datetime(1970, 1, 2, tzinfo=UTC)})

    assert market.serves(BASE.with_params({"fast": 3, "slow": 9}))
    assert not market.serves(later) and market_key(later) != market.key
    with pytest.raises(ValueError, match="the market given is of"):
        run_backtest(later, CANDLES, market=market)


def test_a_market_that_cannot_be_prepared_is_none_for_the_chunk_and_an_error_for_a_run() -> None:
    missing = BASE.model_copy(update={"symbols": ["ETHUSDT"]})

    assert shared_market(missing, CANDLES) is None
    with pytest.raises(DataError, match="no candles given for ETHUSDT"):
        prepare_market(missing, CANDLES)
