"""Orders that cannot make sense, and look-backs longer than the data, are errors that name the values."""

from __future__ import annotations

import pytest
from backtest_core.engine.run import run_backtest
from backtest_core.errors import ConfigError, OrderError, StrategyRuntimeError
from backtest_core.model.config import SourceStrategy

from .scripted import bars, config, scripted

# open, high, low, close; bar 1 opens 2020-01-02.
ROWS = [(10, 10, 10, 10), (10, 11, 9, 10), (10, 12, 8, 11), (11, 11, 11, 11)]


def _run(plan, **kw):  # type: ignore[no-untyped-def]
    return run_backtest(config(scripted(plan), ["AAA"], **kw), {"AAA": bars("AAA", ROWS)})


def test_long_take_profit_below_the_close_is_rejected_naming_bar_and_prices() -> None:
    # BUY at bar 1 (close 10) with a target of 9.5: a long's target must be above its entry.
    with pytest.raises(OrderError) as caught:
        _run({1: ("BUY", None, 9.5, None)})
    assert str(caught.value) == (
        "AAA bar 1 (2020-01-02T00:00:00Z): BUY with take-profit 9.5 below its entry reference 10 "
        "(the bar's close); a long's take-profit must be above its entry and its stop-loss below"
    )
    assert isinstance(caught.value, StrategyRuntimeError)  # the strategy's error path: exit 1, FAILURE


def test_long_stop_above_a_limit_entry_is_rejected_against_the_limit() -> None:
    # BUY limit 9 at bar 0 with a stop at 9.2 (above the limit, below the close 10): wrong.
    with pytest.raises(OrderError, match=r"stop-loss 9\.2 above its entry reference 9 \(the limit price\)"):
        _run({0: ("BUY", 9.0, None, 9.2)})


def test_short_stop_below_the_close_is_rejected_with_allow_short() -> None:
    # SELL at bar 2 (close 11) with a stop of 10.5: a short's stop must be above its entry.
    with pytest.raises(OrderError) as caught:
        _run({2: ("SELL", None, None, 10.5), 0: ("SELL", None, 9.0, 12.0)}, allow_short=True)
    assert str(caught.value).startswith("AAA bar 2 (2020-01-03T00:00:00Z): SELL with stop-loss 10.5 below")
    assert "a short's take-profit must be below its entry and its stop-loss above" in str(caught.value)


def test_every_wrong_bar_is_counted_and_the_first_is_named() -> None:
    with pytest.raises(OrderError, match=r"^AAA bar 0 .*; 1 later bar\(s\) have the same problem$"):
        _run({0: ("BUY", None, 9.0, None), 2: ("BUY", None, None, 12.0)})


def test_sell_without_allow_short_only_closes_so_its_brackets_are_not_checked() -> None:
    # BUY@0 fills at open[1]=10; SELL@1 (a long-only exit) fills at open[2]=10: no trade pnl.
    r = _run({0: ("BUY", None, 12.0, 8.0), 1: ("SELL", None, 12.0, 8.0)})
    assert [(t.exit_reason, t.entry_price, t.exit_price) for t in r.trades] == [("signal", 10.0, 10.0)]


def test_brackets_on_the_right_side_or_at_the_reference_are_accepted() -> None:
    # BUY@0 (close 10) target 11, stop 10 (= the reference): fills at open[1]=10; bar 1 opens at the
    # stop, so it exits at that open, 10: pnl 0.
    r = _run({0: ("BUY", None, 11.0, 10.0)})
    assert [(t.exit_reason, t.exit_price, t.pnl) for t in r.trades] == [("stop_loss", 10.0, 0.0)]


LONG_LOOKBACK = """
from backtest_core.strategy import BaseStrategy, NO_SIGNAL

class Slow(BaseStrategy):
    def get_required_lookback(self):
        return 100_000

    def decide(self, df, interval, **params):
        return NO_SIGNAL
"""


def test_a_lookback_longer_than_the_data_is_an_error_not_zero_trades() -> None:
    with pytest.raises(ConfigError) as caught:
        run_backtest(config(SourceStrategy(source=LONG_LOOKBACK), ["AAA"]), {"AAA": bars("AAA", ROWS)})
    assert str(caught.value) == (
        "Slow needs 100000 bars (get_required_lookback()), the data of AAA has 4: "
        "give a longer range or a shorter look-back"
    )


def test_a_lookback_equal_to_the_data_decides_on_the_last_bar_only() -> None:
    # sma_cross fast=1 slow=3 needs slow+1 = 4 bars: one decision at bar 3, which never fills.
    r = run_backtest(config("sma_cross", ["AAA"], params={"fast": 1, "slow": 3}), {"AAA": bars("AAA", ROWS)})
    assert (r.metrics.trade_count, r.metrics.final_equity) == (0, 1000.0)
