"""Uploaded source is checked by parsing only: size, syntax with line number, one BaseStrategy subclass."""

from __future__ import annotations

from pathlib import Path

import pytest
from backtest_gateway.errors import StrategyRejected
from backtest_gateway.strategy_check import strategy_class_name

pytestmark = pytest.mark.unit

VALID = """
from backtest_core.strategy import BaseStrategy, Signal, Side

class Flip(BaseStrategy):
    def decide(self, df, interval, **p):
        return Signal(Side.NO)
"""


def test_valid_source_yields_its_strategy_class_name():
    assert strategy_class_name(VALID, max_bytes=10_000) == "Flip"


def test_dotted_base_and_subclass_of_own_class_count_and_class_name_picks_one():
    source = (
        "import backtest_core.strategy as s\n"
        "class Base(s.BaseStrategy):\n    pass\n"
        "class Mine(Base):\n    pass\n"
    )

    with pytest.raises(StrategyRejected, match=r"found 2: \['Base', 'Mine'\]"):
        strategy_class_name(source, max_bytes=10_000)
    assert strategy_class_name(source, max_bytes=10_000, class_name="Mine") == "Mine"


def test_syntax_error_is_refused_naming_line_and_column():
    source = "from backtest_core.strategy import BaseStrategy\n\nclass Broken(BaseStrategy)\n    pass\n"

    with pytest.raises(StrategyRejected) as caught:
        strategy_class_name(source, max_bytes=10_000)

    assert caught.value.field == "source"
    assert caught.value.message.startswith("syntax error in strategy source at line 3, column 27")


def test_source_without_strategy_class_is_refused():
    source = "class Helper:\n    pass\n\ndef decide(df):\n    return 'BUY'\n"

    with pytest.raises(StrategyRejected) as caught:
        strategy_class_name(source, max_bytes=10_000)

    assert "exactly one top-level class deriving from BaseStrategy" in caught.value.message
    assert "found 0: []" in caught.value.message


def test_class_name_that_is_not_a_strategy_is_refused_naming_class_name():
    with pytest.raises(StrategyRejected) as caught:
        strategy_class_name(VALID, max_bytes=10_000, class_name="Helper")

    assert caught.value.field == "class_name"
    assert "was 'Helper'; the source defines ['Flip']" in caught.value.message


def test_oversized_source_is_refused_with_both_sizes():
    with pytest.raises(StrategyRejected, match=r"at most 100 bytes \(UTF-8\), was 101 bytes"):
        strategy_class_name("#" * 101, max_bytes=100)


def test_checking_never_executes_the_source(tmp_path: Path):
    marker = tmp_path / "executed"
    hostile = (
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "raise SystemExit('top level ran')\n"
        "from backtest_core.strategy import BaseStrategy\n"
        "class Sneaky(BaseStrategy):\n"
        f"    open({str(marker)!r}, 'w').write('class body ran')\n"
    )
    no_class = f"open({str(marker)!r}, 'w').write('ran')\nraise RuntimeError('boom')\n"

    assert strategy_class_name(hostile, max_bytes=10_000) == "Sneaky"
    with pytest.raises(StrategyRejected, match="found 0"):
        strategy_class_name(no_class, max_bytes=10_000)
    assert not marker.exists()
