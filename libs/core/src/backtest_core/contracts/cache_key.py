"""The result cache key: what makes two backtests produce the same result. The scheduler keys every
task by it (its result cache), the sweeper every trial (a trial another sweep or a single backtest of the
same config ran is reused): one key for both. Pure but for `config_fingerprints`, which asks a source."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

from backtest_core.model.config import BacktestConfig
from backtest_core.model.time_range import epoch_ns

# Settings that never change a result (the engine's output does not depend on its parallelism).
RESULT_NEUTRAL_FIELDS = frozenset({"parallel_symbols"})


def canonical_json(value: Any) -> str:
    """Serialise `value` as JSON with sorted keys and no whitespace, so equal data gives equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_config(config: BacktestConfig) -> dict[str, Any]:
    """Return the config as plain JSON data without the settings that never change the result."""
    data: dict[str, Any] = config.model_dump(mode="json", by_alias=True, exclude=set(RESULT_NEUTRAL_FIELDS))
    return data


def data_key(symbol: str, interval: str) -> str:
    """Name one symbol's data in the fingerprint map, e.g. "BTCUSDT/1h"."""
    return f"{symbol}/{interval}"


class DataFingerprints(Protocol):
    """Fingerprints of the stored candles; raises backtest_core.errors.DataError when there are none."""

    async def fingerprint(self, symbol: str, interval: str, start_ns: int | None, end_ns: int | None) -> str:
        """Return a string that changes iff the stored candles of the symbol in [start_ns, end_ns) change."""
        ...


async def config_fingerprints(config: BacktestConfig, source: DataFingerprints) -> dict[str, str]:
    """The fingerprints of the candles a config reads, by `data_key` (DataError if a symbol has none)."""
    start_ns = None if config.start is None else epoch_ns(config.start)
    end_ns = None if config.end is None else epoch_ns(config.end)
    return {
        data_key(symbol, config.interval): await source.fingerprint(symbol, config.interval, start_ns, end_ns)
        for symbol in config.symbols
    }


def compute_cache_key(
    config: BacktestConfig,
    fingerprints: Mapping[str, str],
    engine_version: str,
) -> str:
    """Return the SHA-256 (64 hex characters) of the canonical config, data fingerprints and engine version
    (a sweep's chunk has none: its trials are keyed one by one, each as a single backtest of its config).

    `fingerprints` maps `data_key(symbol, interval)` to the candle store's fingerprint of that symbol's
    candles in the config's range; it must name every symbol of the config.
    """
    expected = {data_key(symbol, config.interval) for symbol in config.symbols}
    if set(fingerprints) != expected:
        raise ValueError(f"fingerprints must name exactly {sorted(expected)}, was {sorted(fingerprints)}")
    document: dict[str, Any] = {
        "config": canonical_config(config),
        "data": dict(fingerprints),
        "engine_version": engine_version,
    }
    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()
