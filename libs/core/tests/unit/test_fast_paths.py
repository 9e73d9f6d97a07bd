"""The engine's specialised hot paths give exactly the results of the readable reference code."""

from __future__ import annotations

import numpy as np
from backtest_core.candles import Candles
from backtest_core.config import FeeModel
from backtest_core.equity import closes_on_grid
from backtest_core.loader import load_strategy
from backtest_core.metrics import (
    average_loss,
    average_win,
    expectancy,
    max_drawdown,
    profit_factor,
    sequential_sum,
    win_rate_pct,
)
from backtest_core.orchestrator import event_order, generate_proposals, merge_timeline
from backtest_core.portfolio import PortfolioManager, ReplayResults, replay_timeline
from backtest_core.proposals import ProposalSettings, signal_exit_proposals, walk_proposals
from backtest_core.strategies.indicators import last_window_sums, window_sums
from backtest_core.strategy import SignalArrays
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SYMBOLS = ["AAAUSDT", "BBBUSDT", "CCCUSDT"]
MINUTE = 60_000_000_000


def _candles(symbol: str, seed: int, n: int, offset: int = 0) -> Candles:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]] * (1 + rng.normal(0, 0.001, n))
    high = np.maximum(open_, close) * 1.004
    low = np.minimum(open_, close) * 0.996
    times = (offset + np.arange(n, dtype=np.int64)) * MINUTE
    return Candles(symbol, "1m", times, open_, high, low, close, np.ones(n))


@settings(max_examples=300, deadline=None)
@given(
    sides=st.lists(st.sampled_from([-1, 0, 0, 0, 1]), min_size=1, max_size=60),
    fill=st.sampled_from(["next_open", "close"]),
    allow_short=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_vectorized_signal_exits_equal_the_event_walk(
    sides: list[int], fill: str, allow_short: bool, seed: int
) -> None:
    candles = _candles("AAAUSDT", seed, len(sides))
    signals = SignalArrays.from_sides(np.array(sides, np.int8))
    signals.confidence[:] = np.random.default_rng(seed).random(len(sides))
    config = ProposalSettings(fill=fill, allow_short=allow_short)  # type: ignore[arg-type]
    walked = walk_proposals(candles, signals, config).to_list(candles.open_time)
    vectorized = signal_exit_proposals(candles, signals, config).to_list(candles.open_time)
    assert vectorized == walked


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    strategy=st.sampled_from(["sma_cross", "momentum", "peak_ema_reversal", "rsi_reversion"]),
    count=st.integers(1, 3),
    fill=st.sampled_from(["next_open", "close"]),
    size=st.sampled_from([1.0, 0.5, 0.2]),
    allow_short=st.booleans(),
    fees=st.sampled_from([(0.0, 0.0), (0.0002, 0.0004)]),
    slippage_bps=st.sampled_from([0.0, 4.0]),
    tick=st.sampled_from([None, 0.01]),
    step=st.sampled_from([None, 0.001]),
)
def test_tight_replay_equals_portfolio_manager_replay(
    seed: int,
    strategy: str,
    count: int,
    fill: str,
    size: float,
    allow_short: bool,
    fees: tuple[float, float],
    slippage_bps: float,
    tick: float | None,
    step: float | None,
) -> None:
    symbols = SYMBOLS[:count]
    data = {s: _candles(s, seed + i, 400, offset=7 * i * (seed % 2)) for i, s in enumerate(symbols)}
    tables = generate_proposals(
        load_strategy(strategy, {}),
        data,
        "1m",
        ProposalSettings(fill=fill, allow_short=allow_short),  # type: ignore[arg-type]
    )
    union = np.unique(np.concatenate([data[s].open_time for s in symbols]))
    timeline = merge_timeline(tables, data, symbols, union)
    marks = np.column_stack([closes_on_grid(data[s], union) for s in symbols]) if count > 1 else None
    model = FeeModel(maker=fees[0], taker=fees[1])
    args = (10_000.0, count, model, size, slippage_bps, tick, step, marks)
    pm = PortfolioManager(*args)
    pm.replay(timeline)
    reference = ReplayResults.from_results(pm.get_results())
    fast = replay_timeline(timeline, *args)
    assert len(reference.trades) > 0
    assert (fast.rejected, fast.fees_paid, fast.final_cash) == (
        reference.rejected,
        reference.fees_paid,
        reference.final_cash,
    )
    np.testing.assert_array_equal(fast.cash_after_event, reference.cash_after_event)
    for name in reference.trades.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(fast.trades, name), getattr(reference.trades, name))


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    windows=st.lists(st.tuples(st.integers(1, 40), st.integers(0, 3)), min_size=1, max_size=5, unique=True),
    extra=st.integers(0, 5),
    tick=st.sampled_from([0.0, 0.5]),
)
def test_last_window_sums_equal_the_vectorized_window_sums_bit_for_bit(
    seed: int, windows: list[tuple[int, int]], extra: int, tick: float
) -> None:
    rng = np.random.default_rng(seed)
    span = max(n + lag for n, lag in windows)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, span + extra)))
    if tick:
        close = np.round(close / tick) * tick
    got = last_window_sums(close, tuple(windows))
    want = [float(window_sums(close, n)[len(close) - 1 - lag]) for n, lag in windows]
    assert got == want


def test_max_drawdown_is_the_deepest_fall_and_the_longest_underwater_run() -> None:
    equity = np.array([100.0, 90.0, 95.0, 100.0, 120.0, 60.0, 70.0, 80.0, 90.0, 130.0, 120.0])
    worst, bars = max_drawdown(equity)
    assert worst == 50.0  # 120 -> 60
    assert bars == 4  # 60, 70, 80, 90 below the peak of 120
    assert max_drawdown(np.array([1.0, 2.0, 3.0])) == (0.0, 0)
    assert max_drawdown(np.array([3.0, 2.0, 1.0])) == (100.0 * (1.0 - 1.0 / 3.0), 2)


def test_trade_statistics_sum_left_to_right_like_python_311_sum() -> None:
    # 1e16 + 1.0 rounds back to 1e16, so a left fold gives 0.0 where compensated summation gives 1.0.
    pnls = np.array([1e16, 1.0, -1e16, 3.0, -1.0])
    assert sequential_sum(pnls) == 2.0
    assert sequential_sum(np.array([-0.0])) == 0.0 and str(sequential_sum(np.array([-0.0]))) == "0.0"
    assert sequential_sum(np.zeros(0)) == 0.0
    assert win_rate_pct(pnls) == 60.0
    assert profit_factor(pnls) == (1e16 + 1.0 + 3.0) / (1e16 + 1.0)
    assert expectancy(pnls) == 2.0 / 5
    assert average_win(pnls) == (1e16 + 4.0) / 3
    assert average_loss(pnls) == -(1e16 + 1.0) / 2
    assert win_rate_pct([]) is None and profit_factor([1.0]) is None


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    events=st.integers(0, 400),
    bars=st.integers(1, 60),
    symbols=st.integers(1, 8),
)
def test_timelineevent_order_equals_a_lexsort_of_bar_moment_symbol_seq(
    seed: int, events: int, bars: int, symbols: int
) -> None:
    # Any input order, many events per bar: the C counting sort must still give the lexsort's order.
    rng = np.random.default_rng(seed)
    bar, moment, sym = (
        rng.integers(0, bars, events),
        rng.integers(0, 7, events),
        rng.integers(0, symbols, events),
    )
    seq = rng.permutation(events)  # unique, as the timeline's (symbol, seq) pairs are
    order = event_order(bar, moment, sym, seq, bars, symbols)
    np.testing.assert_array_equal(order, np.lexsort((seq, sym, moment, bar)))
