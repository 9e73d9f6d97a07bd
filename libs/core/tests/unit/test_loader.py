"""Strategy loading by name, {"builtin"}, {"module","class"} and uploaded source; clear errors."""

from __future__ import annotations

import pytest
from backtest_core.errors import ConfigError, StrategyLoadError
from backtest_core.strategy.builtins import SmaCrossStrategy
from backtest_core.strategy.loader import load_strategy, load_strategy_class

GOOD = """
from backtest_core.strategy import BaseStrategy, Signal, Side

class AlwaysBuy(BaseStrategy):
    def decide(self, df, interval, **params):
        return Signal(Side.BUY)
"""


@pytest.mark.parametrize(
    "spec",
    [
        "sma_cross",
        {"builtin": "sma_cross"},
        {"module": "backtest_core.strategy.builtins.sma_cross", "class": "SmaCrossStrategy"},
    ],
)
def test_builtin_loads_by_name_dict_and_module(spec: object) -> None:
    assert load_strategy_class(spec) is SmaCrossStrategy  # type: ignore[arg-type]


def test_source_with_one_strategy_class_loads_it() -> None:
    cls = load_strategy_class({"source": GOOD})
    assert cls.__name__ == "AlwaysBuy"
    assert load_strategy({"source": GOOD, "class": "AlwaysBuy"}, {"anything": 1}).values == {"anything": 1}


def test_unknown_builtin_names_the_known_ones() -> None:
    with pytest.raises(StrategyLoadError, match=r"unknown built-in strategy 'nope'.*sma_cross"):
        load_strategy_class("nope")


def test_syntax_error_reports_the_line() -> None:
    with pytest.raises(StrategyLoadError, match="syntax error in strategy source, line 3"):
        load_strategy_class({"source": "x = 1\n\ndef broken(:\n"})


def test_source_without_strategy_class_is_rejected() -> None:
    with pytest.raises(StrategyLoadError, match=r"exactly one BaseStrategy subclass.*found 0"):
        load_strategy_class({"source": "x = 1\n"})


def test_module_attribute_that_is_not_a_strategy_is_rejected() -> None:
    with pytest.raises(StrategyLoadError, match="must be a subclass"):
        load_strategy_class({"module": "backtest_core.strategy.loader", "class": "load_strategy"})


def test_params_are_checked_at_load() -> None:
    with pytest.raises(ConfigError, match="fast must be < slow, was fast=30, slow=10"):
        load_strategy("sma_cross", {"fast": 30, "slow": 10})
