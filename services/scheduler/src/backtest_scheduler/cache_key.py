"""The result cache key: what makes two backtests produce the same result. Pure; no I/O."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from backtest_core.config import BacktestConfig

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


def compute_cache_key(config: BacktestConfig, fingerprints: Mapping[str, str], engine_version: str) -> str:
    """Return the SHA-256 (64 hex characters) of the canonical config, data fingerprints and engine version.

    `fingerprints` maps `data_key(symbol, interval)` to the candle store's fingerprint of that symbol's
    candles in the config's range; it must name every symbol of the config.
    """
    expected = {data_key(symbol, config.interval) for symbol in config.symbols}
    if set(fingerprints) != expected:
        raise ValueError(f"fingerprints must name exactly {sorted(expected)}, was {sorted(fingerprints)}")
    document = {
        "config": canonical_config(config),
        "data": dict(fingerprints),
        "engine_version": engine_version,
    }
    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()
