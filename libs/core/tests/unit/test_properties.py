"""Properties: equity = cash + marked positions at every bar; parallelism never changes the result."""

from __future__ import annotations

import numpy as np
import pytest
from backtest_core.candles import Candles
from backtest_core.config import BacktestConfig
from backtest_core.engine import run_backtest
from backtest_core.equity import closes_on_grid
from backtest_core.loader import load_strategy
from backtest_core.orchestrator import generate_proposals, merge_timeline
from backtest_core.portfolio import PortfolioManager
from backtest_core.proposals import ProposalSettings, TradeEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    marks = np.column_stack([closes_on_grid(data[s], union) for s in symbols])
    pm = PortfolioManager(10_000.0, len(symbols), config.fees, config.size, config.slippage_bps, marks=marks)
    reference = []
    k = 0
    for g in range(len(union)):
        while k < len(timeline) and timeline.union_bar[k] <= g:
            event = TradeEvent(
                "",
                int(timeline.seq[k]),
                "entry" if timeline.is_entry[k] else "exit",
                0,
                0,
                0,
                float(timeline.price[k]),
                int(timeline.price_kind[k]),
                None,
            )
            pm.try_execute(
                event, int(timeline.symbol[k]), int(timeline.mark_bar[k]), int(timeline.direction[k])
            )
            k += 1
        reference.append(pm.on_bar(g))
    equity = np.array([p.equity for p in result.equity_curve])
    np.testing.assert_allclose(equity, reference, rtol=1e-12)
    assert result.metrics.final_equity == equity[-1]
    assert result.metrics.final_equity == pytest.approx(
        10_000.0 + sum(t.pnl for t in result.trades), rel=1e-9
    )
