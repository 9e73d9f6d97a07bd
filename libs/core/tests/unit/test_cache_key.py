"""The cache key: same result-relevant inputs give the same key, anything else a different one."""

import pytest
from backtest_core.contracts.cache_key import canonical_json, compute_cache_key, data_key
from backtest_core.model.config import BacktestConfig

pytestmark = pytest.mark.unit

PRINTS = {"BTCUSDT/1d": "fp-btc", "ETHUSDT/1d": "fp-eth"}


def config(**changes: object) -> BacktestConfig:
    base: dict[str, object] = {
        "strategy": "sma_cross",
        "params": {"fast": 10, "slow": 30},
        "symbols": ["BTCUSDT", "ETHUSDT"],
        "interval": "1d",
    }
    return BacktestConfig.model_validate(base | changes)


def test_key_is_sha256_hex_of_64_characters() -> None:
    key = compute_cache_key(config(), PRINTS, "0.1.0")
    assert len(key) == 64
    assert int(key, 16) >= 0


def test_parallel_symbols_does_not_change_the_key() -> None:
    one = compute_cache_key(config(parallel_symbols=1), PRINTS, "0.1.0")
    eight = compute_cache_key(config(parallel_symbols=8), PRINTS, "0.1.0")
    assert one == eight


def test_params_order_does_not_change_the_key() -> None:
    forward = compute_cache_key(config(params={"fast": 10, "slow": 30}), PRINTS, "0.1.0")
    backward = compute_cache_key(config(params={"slow": 30, "fast": 10}), PRINTS, "0.1.0")
    assert forward == backward


def test_fingerprint_map_order_does_not_change_the_key() -> None:
    reversed_prints = dict(reversed(list(PRINTS.items())))
    assert compute_cache_key(config(), PRINTS, "0.1.0") == compute_cache_key(
        config(), reversed_prints, "0.1.0"
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"params": {"fast": 11, "slow": 30}},
        {"cash": 999_999.0},
        {"fees": {"maker": 0.0, "taker": 0.0}},
        {"symbols": ["ETHUSDT", "BTCUSDT"]},
        {"start": "2021-01-01T00:00:00Z"},
        {"allow_short": True},
    ],
)
def test_a_result_relevant_setting_changes_the_key(changes: dict[str, object]) -> None:
    assert compute_cache_key(config(**changes), PRINTS, "0.1.0") != compute_cache_key(
        config(), PRINTS, "0.1.0"
    )


def test_changed_candles_or_engine_version_change_the_key() -> None:
    base = compute_cache_key(config(), PRINTS, "0.1.0")
    assert compute_cache_key(config(), PRINTS | {"ETHUSDT/1d": "fp-eth-2"}, "0.1.0") != base
    assert compute_cache_key(config(), PRINTS, "0.1.1") != base


def test_fingerprints_must_name_every_symbol() -> None:
    with pytest.raises(
        ValueError, match=r"must name exactly \['BTCUSDT/1d', 'ETHUSDT/1d'\], was \['BTCUSDT/1d'\]"
    ):
        compute_cache_key(config(), {"BTCUSDT/1d": "fp"}, "0.1.0")


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    assert canonical_json({"b": 1, "a": [1.5, {"d": 2, "c": 3}]}) == '{"a":[1.5,{"c":3,"d":2}],"b":1}'
    assert data_key("BTCUSDT", "1h") == "BTCUSDT/1h"
