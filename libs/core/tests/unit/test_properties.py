"""Properties against the event-by-event oracle (portfolio_oracle.PortfolioManager): the engine's replay
gives its trades, cash and rejections; equity = cash + marked positions at every bar; parallelism never
changes the result."""

from __future__ import annotations

import numpy as np
import pytest
from backtest_core.engine.equity import closes_on_grid
from backtest_core.engine.orchestrator import generate_proposals, merge_timeline
from backtest_core.engine.portfolio import replay_timeline
from backtest_core.engine.proposals import ProposalSettings
from backtest_core.engine.run import run_backtest
from backtest_core.model.candles import Candles
from backtest_core.model.config import BacktestConfig, FeeModel
from backtest_core.strategy.loader import load_strategy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .portfolio_oracle import PortfolioManager
from .scripted import minute_walk

SYMBOLS = ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT"]


def _market(seed: int, n: int, offsets: list[int]) -> dict[str, Candles]:
    rng = np.random.default_rng(seed)
    out = {}
    for symbol, offset in zip(SYMBOLS, offsets, strict=False):
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        open_ = np.r_[close[0], close[:-1]] * (1 + rng.normal(0, 0.002, n))
        high = np.maximum(open_, close) * 1.01
        low = np.minimum(open_, close) * 0.99
        times = (offset + np.arange(n, dtype=np.int64)) * 86_400_000_000_000
        out[symbol] = Candles(symbol, "1d", times, open_, high, low, close, np.ones(n))
    return out


configs = st.fixed_dictionaries(
    {
        "strategy": st.sampled_from(["sma_cross", "momentum", "peak_ema_reversal", "rsi_reversion"]),
        "fill": st.sampled_from(["next_open", "close"]),
        "size": st.sampled_from([1.0, 0.5, 0.3]),
        "allow_short": st.booleans(),
        "slippage_bps": st.sampled_from([0.0, 5.0]),
        "max_holding_bars": st.sampled_from([None, 7]),
    }
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    cfg=configs,
    count=st.integers(1, 4),
    offsets=st.lists(st.integers(0, 20), min_size=4, max_size=4),
)
def test_equity_is_cash_plus_marked_positions_and_parallelism_changes_nothing(
    seed: int, cfg: dict[str, object], count: int, offsets: list[int]
) -> None:
    candles = _market(seed, 160, offsets)
    symbols = SYMBOLS[:count]
    config = BacktestConfig(symbols=symbols, interval="1d", cash=10_000.0, **cfg)  # type: ignore[arg-type]
    result = run_backtest(config, candles)
    parallel = run_backtest(config.model_copy(update={"parallel_symbols": 3}), candles)
    assert parallel.model_dump_json(exclude={"config"}) == result.model_dump_json(exclude={"config"})

    # Reference: replay the timeline bar by bar, asking the portfolio for cash + marked positions
    # at every bar's close; the engine's curve is built vectorised and must agree.
    data = {s: candles[s] for s in symbols}
    strategy = load_strategy(config.strategy, config.params)
    settings_ = ProposalSettings(config.fill, config.allow_short, config.same_bar, config.max_holding_bars)
    tables = generate_proposals(strategy, data, "1d", settings_)
    union = np.unique(np.concatenate([data[s].open_time for s in symbols]))
    timeline = merge_timeline(tables, data, symbols, union)
    closes = [closes_on_grid(data[s], union) for s in symbols]
    pm = PortfolioManager(10_000.0, count, config.fees, config.size, config.slippage_bps, closes=closes)
    reference = []
    k = 0
    for g in range(len(union)):
        while k < len(timeline) and timeline.union_bar[k] <= g:
            pm.execute(timeline, k)
            k += 1
        reference.append(pm.equity_at(g))
    equity = np.array([p.equity for p in result.equity_curve])
    np.testing.assert_allclose(equity, reference, rtol=1e-12)
    assert result.metrics.final_equity == equity[-1]
    assert result.metrics.final_equity == pytest.approx(
        10_000.0 + sum(t.pnl for t in result.trades), rel=1e-9
    )


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
def test_the_replay_executes_what_the_event_by_event_portfolio_executes(
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
    data = {s: minute_walk(s, seed + i, 400, offset=7 * i * (seed % 2)) for i, s in enumerate(symbols)}
    tables = generate_proposals(
        load_strategy(strategy, {}),
        data,
        "1m",
        ProposalSettings(fill=fill, allow_short=allow_short),  # type: ignore[arg-type]
    )
    union = np.unique(np.concatenate([data[s].open_time for s in symbols]))
    timeline = merge_timeline(tables, data, symbols, union)
    closes = [closes_on_grid(data[s], union) for s in symbols]
    model = FeeModel(maker=fees[0], taker=fees[1])
    args = (10_000.0, count, model, size, slippage_bps, tick, step, closes)
    pm = PortfolioManager(*args)
    pm.replay(timeline)
    reference = pm.results()
    fast = replay_timeline(timeline, *args)
    assert len(reference.trades) > 0
    assert fast.rejected == reference.rejected
    cash_tol = 1e-12 * 10_000.0  # cash is a difference of amounts up to the start cash
    assert fast.final_cash == pytest.approx(reference.final_cash, rel=1e-12, abs=cash_tol)
    assert fast.fees_paid == pytest.approx(reference.fees_paid, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(fast.cash_after_event, reference.cash_after_event, rtol=1e-12, atol=cash_tol)
    for name in ("symbol", "seq", "direction", "entry_event", "exit_event"):
        np.testing.assert_array_equal(getattr(fast.trades, name), getattr(reference.trades, name))
    for name in ("units", "entry_fill", "exit_fill", "entry_fee", "exit_fee"):
        np.testing.assert_allclose(getattr(fast.trades, name), getattr(reference.trades, name), rtol=1e-12)
