"""The engine's specialised paths agree with the general ones: vectorized proposals with the event walk,
per-bar window sums with the vectorized ones, the packed event order with a lexsort."""

from __future__ import annotations

import numpy as np
from backtest_core.engine.orchestrator import event_order
from backtest_core.engine.proposals import ProposalSettings, signal_exit_proposals, walk_proposals
from backtest_core.strategy import SignalArrays
from backtest_core.strategy.indicators import last_window_sums, window_sums
from hypothesis import given, settings
from hypothesis import strategies as st

from .portfolio_oracle import proposal_rows
from .scripted import minute_walk


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
    candles = minute_walk("AAAUSDT", seed, len(sides))
    signals = SignalArrays.from_sides(np.array(sides, np.int8))
    signals.confidence[:] = np.random.default_rng(seed).random(len(sides))
    config = ProposalSettings(fill=fill, allow_short=allow_short)  # type: ignore[arg-type]
    walked = proposal_rows(walk_proposals(candles, signals, config))
    vectorized = proposal_rows(signal_exit_proposals(candles, signals, config))
    assert vectorized == walked


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
    # Any input order, many events per bar: the packed key must sort as the four keys do.
    rng = np.random.default_rng(seed)
    bar, moment, sym = (
        rng.integers(0, bars, events),
        rng.integers(0, 7, events),
        rng.integers(0, symbols, events),
    )
    seq = rng.permutation(events)  # unique, as the timeline's (symbol, seq) pairs are
    order = event_order(bar, moment, sym, seq, bars, symbols)
    np.testing.assert_array_equal(order, np.lexsort((seq, sym, moment, bar)))
