"""Hand-derived small cases: every number below is worked out by hand in the comment above it."""

from __future__ import annotations

import pytest
from backtest_core.engine.run import run_backtest

from .scripted import bars, config, scripted

# open, high, low, close
FLAT_UP = [(10, 10, 10, 10), (10, 10.5, 9.5, 10), (12, 12, 12, 12), (15, 15, 15, 15)]


def _run(plan, rows=FLAT_UP, **kw):  # type: ignore[no-untyped-def]
    c = bars("AAA", rows)
    return run_backtest(config(scripted(plan), ["AAA"], **kw), {"AAA": c})


def test_taker_fee_is_paid_on_market_entry_and_exit() -> None:
    # BUY@0 fills at open[1]=10: units = 1000/(10*1.01); SELL@2 fills at open[3]=15, minus 1% fee.
    r = _run(
        {0: ("BUY", None, None, None), 2: ("SELL", None, None, None)}, fees={"maker": 0.0, "taker": 0.01}
    )
    assert r.metrics.final_equity == pytest.approx(1000 / 1.01 * 1.5 * 0.99, rel=1e-12)
    t = r.trades[0]
    assert (t.exit_reason, t.bars_held, t.entry_price, t.exit_price) == ("signal", 2, 10.0, 15.0)
    assert t.fees == pytest.approx(1000 / 1.01 * 0.01 + 1000 / 1.01 / 10 * 15 * 0.01)
    assert r.metrics.fees_paid == pytest.approx(t.fees)


def test_slippage_moves_entry_up_and_exit_down_for_a_long() -> None:
    # 50 bps: entry 10.05, exit 14.925 -> 1000 * 14.925 / 10.05.
    r = _run({0: ("BUY", None, None, None), 2: ("SELL", None, None, None)}, slippage_bps=50)
    assert r.trades[0].entry_price == pytest.approx(10.05)
    assert r.trades[0].exit_price == pytest.approx(14.925)
    assert r.metrics.final_equity == pytest.approx(1000 * 14.925 / 10.05, rel=1e-12)


def test_short_profits_when_price_falls_and_buy_covers_and_reverses() -> None:
    # SELL@0 shorts 100 units at open[1]=10; BUY@2 covers at open[3]=8: +200, and (allow_short)
    # reverses into a long at the same open, marked at the last close 8.
    rows = [(10, 10, 10, 10), (10, 10, 10, 10), (9, 9, 9, 9), (8, 8, 8, 8)]
    r = _run({0: ("SELL", None, None, None), 2: ("BUY", None, None, None)}, rows=rows, allow_short=True)
    assert [(t.side, t.exit_reason) for t in r.trades] == [("short", "signal"), ("long", "end_of_data")]
    assert r.trades[0].pnl == pytest.approx(200.0)
    assert r.metrics.final_equity == pytest.approx(1200.0)
    assert [p.equity for p in r.equity_curve] == pytest.approx([1000, 1000, 1100, 1200])


def test_sell_signal_without_allow_short_opens_nothing() -> None:
    r = _run({0: ("SELL", None, None, None)})
    assert (r.trades, r.metrics.final_equity) == ([], 1000.0)


def test_stop_loss_hit_intrabar_exits_at_the_stop() -> None:
    rows = [(10, 10, 10, 10), (10, 10, 9.5, 10), (9.8, 10, 8.5, 9), (9, 9, 9, 9)]
    r = _run({0: ("BUY", None, None, 9.0)}, rows=rows)
    t = r.trades[0]
    assert (t.exit_reason, t.exit_price, t.bars_held) == ("stop_loss", 9.0, 1)
    assert r.metrics.final_equity == pytest.approx(900.0)


def test_take_profit_hit_exits_at_the_target_paying_maker_fee() -> None:
    rows = [(10, 10, 10, 10), (10, 10, 10, 10), (11, 12.5, 11, 12), (12, 12, 12, 12)]
    r = _run({0: ("BUY", None, 12.0, None)}, rows=rows, fees={"maker": 0.001, "taker": 0.0})
    assert (r.trades[0].exit_reason, r.trades[0].exit_price) == ("take_profit", 12.0)
    assert r.metrics.final_equity == pytest.approx(1200 - 1.2)


def test_gap_through_stop_fills_at_the_open() -> None:
    rows = [(10, 10, 10, 10), (10, 10, 10, 10), (8, 8.5, 7.5, 8), (8, 8, 8, 8)]
    r = _run({0: ("BUY", None, None, 9.0)}, rows=rows)
    assert (r.trades[0].exit_reason, r.trades[0].exit_price) == ("stop_loss", 8.0)
    assert r.metrics.final_equity == pytest.approx(800.0)


def test_gap_through_target_fills_at_the_open() -> None:
    rows = [(10, 10, 10, 10), (10, 10, 10, 10), (13, 13, 12.5, 13), (13, 13, 13, 13)]
    r = _run({0: ("BUY", None, 12.0, None)}, rows=rows)
    assert (r.trades[0].exit_reason, r.trades[0].exit_price) == ("take_profit", 13.0)


@pytest.mark.parametrize(
    ("rule", "reason", "equity"),
    [("stop_first", "stop_loss", 900.0), ("target_first", "take_profit", 1200.0)],
)
def test_same_bar_touching_stop_and_target_follows_the_rule(rule: str, reason: str, equity: float) -> None:
    rows = [(10, 10, 10, 10), (10, 10, 10, 10), (10, 12.5, 8.5, 10), (10, 10, 10, 10)]
    r = _run({0: ("BUY", None, 12.0, 9.0)}, rows=rows, same_bar=rule)
    assert r.trades[0].exit_reason == reason
    assert r.metrics.final_equity == pytest.approx(equity)


def test_max_holding_bars_exits_at_market_after_that_many_bars() -> None:
    # Entry at open[1]=10, two bars later at open[3]=15.
    r = _run({0: ("BUY", None, None, None)}, max_holding_bars=2)
    t = r.trades[0]
    assert (t.exit_reason, t.bars_held, t.exit_price) == ("time_limit", 2, 15.0)


def test_close_fill_enters_at_the_signal_bars_close() -> None:
    r = _run({1: ("BUY", None, None, None), 2: ("SELL", None, None, None)}, fill="close")
    t = r.trades[0]
    assert (t.entry_price, t.exit_price, t.bars_held) == (10.0, 12.0, 1)
    assert r.metrics.final_equity == pytest.approx(1200.0)


def test_signal_on_last_bar_never_fills_in_next_open_mode() -> None:
    r = _run({3: ("BUY", None, None, None)})
    assert (r.trades, r.metrics.trade_count) == ([], 0)


def test_open_position_is_marked_at_last_close_without_exit_fee() -> None:
    r = _run({0: ("BUY", None, None, None)}, fees={"maker": 0.0, "taker": 0.01})
    t = r.trades[0]
    assert (t.exit_reason, t.exit_price) == ("end_of_data", 15.0)
    assert r.metrics.final_equity == pytest.approx(1000 / 1.01 * 1.5)


def test_limit_entry_fills_at_the_limit_when_the_next_bar_reaches_it() -> None:
    rows = [(10, 10, 10, 10), (10, 10, 9, 9.5), (12, 12, 12, 12)]
    r = _run({0: ("BUY", 9.5, None, None)}, rows=rows)
    assert r.trades[0].entry_price == 9.5
    assert r.metrics.final_equity == pytest.approx(1000 / 9.5 * 12)


def test_overlapping_proposals_of_two_symbols_share_cash_and_the_second_is_rejected() -> None:
    # Both BUY at bar 0 with size 1.0: AAA (first in config.symbols) takes all the cash.
    a, b = bars("AAA", FLAT_UP), bars("BBB", FLAT_UP)
    plan = {0: ("BUY", None, None, None)}
    r = run_backtest(config(scripted(plan), ["AAA", "BBB"]), {"AAA": a, "BBB": b})
    assert [t.symbol for t in r.trades] == ["AAA"]
    assert r.rejected_proposals == 1
    half = run_backtest(config(scripted(plan), ["AAA", "BBB"], size=0.5), {"AAA": a, "BBB": b})
    assert [t.symbol for t in half.trades] == ["AAA", "BBB"]
    assert half.rejected_proposals == 0
    # AAA: 500/10 units; BBB sized on equity marked at close[0]=10 -> 0.5 * 1000 / 10 units.
    assert half.metrics.final_equity == pytest.approx(1500.0)
