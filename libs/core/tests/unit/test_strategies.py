"""Built-in strategies: per-bar == vectorized bit for bit, no look-ahead, parameter checks."""

from __future__ import annotations

import numpy as np
import pytest
from backtest_core.engine.orchestrator import compute_signals
from backtest_core.engine.proposals import ProposalSettings, build_proposals
from backtest_core.errors import ConfigError
from backtest_core.model.candles import Candles
from backtest_core.strategy import BaseStrategy
from backtest_core.strategy.builtins import BUILTINS

from .portfolio_oracle import proposal_rows

PARAMS = {
    "sma_cross": {"fast": 5, "slow": 12},
    "momentum": {"period": 5, "threshold": 0.002, "take_profit_pct": 0.01, "stop_loss_pct": 0.01},
    "peak_ema_reversal": {"ema_span": 5, "peak_window": 4, "depth": 0.002},
    "rsi_reversion": {"period": 6},
    "donchian_breakout": {"entry_window": 8, "exit_window": 4},
}


def walk(n: int, seed: int = 7, tick: float = 0.0) -> Candles:
    """Return a random walk; with tick > 0, prices on a coarse grid (many exact SMA ties)."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    if tick:
        close = np.round(close / tick) * tick
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.005, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.005, n))
    times = np.arange(n, dtype=np.int64) * 3_600_000_000_000
    return Candles("BTCUSDT", "1h", times, open_, high, low, close, np.ones(n))


def _strategy(name: str) -> BaseStrategy:
    return BUILTINS[name](**PARAMS[name])


@pytest.mark.parametrize("tick", [0.0, 0.5])
@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_vectorized_signals_equal_per_bar_decide_exactly(name: str, tick: float) -> None:
    candles = walk(1500, tick=tick)
    s = _strategy(name)
    fast = compute_signals(s, candles, "1h", "vectorized")
    slow = compute_signals(s, candles, "1h", "per_bar")
    assert int((fast.side != 0).sum()) > 5
    np.testing.assert_array_equal(fast.side, slow.side)
    np.testing.assert_array_equal(fast.take_profit, slow.take_profit)
    np.testing.assert_array_equal(fast.stop_loss, slow.stop_loss)
    settings = ProposalSettings(allow_short=True)
    a, b = build_proposals(candles, fast, settings), build_proposals(candles, slow, settings)
    assert proposal_rows(a) == proposal_rows(b)


@pytest.mark.parametrize("path", ["vectorized", "per_bar"])
@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_signal_at_t_never_depends_on_bars_after_t(name: str, path: str) -> None:
    full = walk(400, seed=3)
    s = _strategy(name)
    reference = compute_signals(s, full, "1h", path).side
    rng = np.random.default_rng(1)
    for t in sorted(rng.choice(np.arange(30, 400), 12, replace=False)):
        cut = full._take(slice(0, t + 1))
        # Poison the future: if the strategy looked past t, scrambled later bars would change signals.
        assert np.array_equal(compute_signals(s, cut, "1h", path).side, reference[: t + 1])


def test_window_shows_only_the_lookback_bars_up_to_t() -> None:
    seen: list[tuple[int, float]] = []

    class Spy(BaseStrategy):
        def get_required_lookback(self) -> int:
            return 3

        def decide(self, df, interval, **params):  # type: ignore[no-untyped-def]
            seen.append((len(df), float(df["close"][-1])))
            assert df.close is not None and df.to_pandas().shape == (3, 5)
            return "NO"

    candles = walk(6)
    compute_signals(Spy(), candles, "1h")
    assert seen == [(3, float(c)) for c in candles.close[2:]]


def test_sma_cross_rejects_fast_not_below_slow() -> None:
    with pytest.raises(ConfigError, match="fast must be < slow, was fast=30, slow=10"):
        BUILTINS["sma_cross"](fast=30, slow=10)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"fats": 3}, "unknown \\['fats'\\]"),
        ({"fast": 2.5}, "fast must be an integer"),
        ({"fast": 0}, ">= 1"),
    ],
)
def test_bad_params_raise_config_error_naming_the_param(params: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BUILTINS["sma_cross"](**params)  # type: ignore[arg-type]


def test_every_builtin_documents_its_params_with_defaults() -> None:
    for cls in BUILTINS.values():
        assert cls.__doc__ and "Defaults" in cls.__doc__
        assert cls.params and all(p.doc for p in cls.params.values())
        cls()  # defaults are valid
