"""The market a run reads, whatever its strategy: each symbol's bars in the run's range, their union grid,
the closes on it and the buy-and-hold benchmark's per-bar returns.

It depends on the config's symbols, interval and range only, so the trials of a sweep's chunk (one base
config, other params) prepare it once and share it; `run_backtest` prepares its own when given none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from backtest_core.engine.equity import closes_on_grid
from backtest_core.errors import BacktestError, DataError
from backtest_core.metrics.extra import buy_and_hold_value
from backtest_core.metrics.performance import bar_returns
from backtest_core.model.candles import Candles
from backtest_core.model.config import BacktestConfig
from backtest_core.model.time_range import describe_range, epoch_ns

MarketKey = tuple[tuple[str, ...], str, int | None, int | None]  # symbols, interval, start, end (ns)


def market_key(config: BacktestConfig) -> MarketKey:
    """What of a config a market depends on."""
    start = None if config.start is None else epoch_ns(config.start)
    end = None if config.end is None else epoch_ns(config.end)
    return tuple(config.symbols), config.interval, start, end


@dataclass(frozen=True, slots=True)
class Market:
    """The bars of a run (by symbol, in the config's range), the union of their open times, each symbol's
    last known close at every union bar (0 before its first) and the benchmark's per-bar returns."""

    key: MarketKey
    data: dict[str, Candles]
    union: np.ndarray
    closes: list[np.ndarray]
    benchmark_returns: np.ndarray

    def serves(self, config: BacktestConfig) -> bool:
        """True if a run of `config` reads exactly this market."""
        return self.key == market_key(config)


def prepare_market(config: BacktestConfig, candles: Mapping[str, Candles]) -> Market:
    """The market of `config` in `candles`; DataError when a symbol has no candles (in range) or the
    candles are of another interval."""
    key = market_key(config)
    _, _, start, end = key
    data = {}
    for symbol in config.symbols:
        c = candles.get(symbol)
        if c is None:
            raise DataError(f"no candles given for {symbol}; given symbols are {sorted(candles)}")
        if c.interval != config.interval:
            raise DataError(
                f"{symbol}: candles have interval {c.interval!r}, config.interval is {config.interval!r}"
            )
        if start is not None or end is not None:
            c = c.between(start, end)
        if len(c) == 0:
            raise DataError(f"no candles for {symbol} {describe_range(config.start, config.end)}")
        data[symbol] = c
    ordered = [data[s] for s in config.symbols]
    first = ordered[0].open_time
    if all(len(c.open_time) == len(first) and np.array_equal(c.open_time, first) for c in ordered):
        union = first
    else:
        union = np.unique(np.concatenate([c.open_time for c in ordered]))
    closes = [closes_on_grid(c, union) for c in ordered]
    return Market(key, data, union, closes, bar_returns(buy_and_hold_value(closes)))


def shared_market(config: BacktestConfig, candles: Mapping[str, Candles]) -> Market | None:
    """The market a chunk's trials share, or None when it cannot be prepared (each trial then meets the
    same error in its own run and ends by it)."""
    try:
        return prepare_market(config, candles)
    except BacktestError:
        return None
