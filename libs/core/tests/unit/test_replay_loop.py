"""The C replay loop sizes, accepts and rejects entries as replay_loop.replay_events states, by hand."""

from __future__ import annotations

import numpy as np
import pytest
from backtest_core.engine.replay_loop import LoopResult, ReplayInputs, replay_events


def _replay(
    events: list[tuple[int, int, bool, int, float]],
    *,
    rate: float = 0.0,
    closes: list[list[float]] | None = None,
    mark_bar: list[int] | None = None,
    cash: float = 1_000.0,
    size: float = 1.0,
    step: float | None = None,
) -> LoopResult:
    """Replay (symbol, seq, is_entry, direction, fill) events."""
    symbol, seq, is_entry, direction, fills = (np.array(c) for c in zip(*events, strict=True))
    n = len(events)
    symbols = len(closes) if closes is not None else 1
    return replay_events(
        ReplayInputs(
            symbol.astype(np.int64),
            seq.astype(np.int64),
            is_entry.astype(bool),
            direction.astype(np.int64),
            fills.astype(np.float64),
            np.full(n, rate),
            np.array(mark_bar if mark_bar is not None else [0] * n, np.int64),
            [np.array(c) for c in closes] if closes is not None else [np.zeros(1)] * symbols,
            cash,
            size,
            step,
        )
    )


def test_an_all_in_long_buys_cash_over_fill_plus_fee_and_sells_at_the_exit() -> None:
    # units = 1000 / (10 * 1.001) = 99.9000999...; cost 999.000999, fee 0.999000999 -> cash 0;
    # exit at 12: 99.9000999 * 12 * (1 - 0.001) = 1197.6023976...
    done = _replay([(0, 0, True, 1, 10.0), (0, 0, False, 1, 12.0)], rate=0.001)
    units = 1_000.0 / (10.0 * 1.001)
    assert done.units_at.tolist() == pytest.approx([units, 0.0], rel=1e-15)
    assert done.exit_of.tolist() == [1, -1]
    assert done.rejected == 0
    assert done.cash == pytest.approx(units * 12.0 * 0.999, rel=1e-14)


def test_a_short_returns_its_collateral_plus_the_fall() -> None:
    # units = 1000 / 10 = 100 sold at 10 (1000 set aside), bought back at 8: 100 * (2 * 10 - 8) = 1200
    done = _replay([(0, 0, True, -1, 10.0), (0, 0, False, -1, 8.0)])
    assert done.units_at[0] == 100.0
    assert done.cash == 1_200.0


def test_a_second_entry_of_an_open_symbol_and_the_exit_of_another_proposal_are_ignored() -> None:
    # seq 0 opens; seq 1's entry is rejected (the symbol holds a position); seq 1's exit does nothing;
    # seq 0's exit at 11 closes: 100 units * 11 = 1100.
    events = [(0, 0, True, 1, 10.0), (0, 1, True, 1, 10.5), (0, 1, False, 1, 10.8), (0, 0, False, 1, 11.0)]
    done = _replay(events)
    assert done.rejected == 1
    assert done.exit_of.tolist() == [3, -1, -1, -1]
    assert done.cash == 1_100.0


def test_quantities_round_down_to_the_step() -> None:
    # 1000 / 30 = 33.33...: floor(33.33 / 0.5 + 1e-9) * 0.5 = 33.0 units, 990 paid, 10 left
    done = _replay([(0, 0, True, 1, 30.0), (0, 0, False, 1, 30.0)], step=0.5)
    assert done.units_at[0] == 33.0
    assert done.cash == 1_000.0


def test_shared_cash_sizes_from_equity_marked_at_the_entrys_bar_and_rejects_what_cash_cannot_pay() -> None:
    # Two symbols, 50% of equity per entry. A buys 500 / 10 = 50 units (cash 500). At bar 1 A closes
    # at 12: equity = 500 + 50 * 12 = 1100, B buys 550 / 5 = 110 units for 550 > 500 cash: rejected.
    # At bar 2 A closes at 8: equity = 500 + 400 = 900, B buys 450 / 5 = 90 units (cash 50).
    closes = [[10.0, 12.0, 8.0], [5.0, 5.0, 5.0]]
    events = [(0, 0, True, 1, 10.0), (1, 0, True, 1, 5.0), (1, 1, True, 1, 5.0)]
    done = _replay(events, closes=closes, mark_bar=[0, 1, 2], size=0.5)
    assert done.units_at.tolist() == [50.0, 0.0, 90.0]
    assert done.rejected == 1
    assert done.cash == 50.0


def test_an_open_short_adds_its_collateral_less_the_buy_back_to_the_equity() -> None:
    # A shorts 50 units at 10 (cash 500). At bar 1 A closes at 8: the short is worth 2 * 50 * 10 - 50 * 8
    # = 600, equity 1100; B buys 0.5 * 1100 / 5 = 110 units for 550 > 500: rejected. With size 0.4:
    # A 40 units (cash 600), equity 600 + 800 - 320 = 1080, B 0.4 * 1080 / 5 = 86.4 units for 432.
    closes = [[10.0, 8.0], [5.0, 5.0]]
    events = [(0, 0, True, -1, 10.0), (1, 0, True, 1, 5.0)]
    assert _replay(events, closes=closes, mark_bar=[0, 1], size=0.5).rejected == 1
    done = _replay(events, closes=closes, mark_bar=[0, 1], size=0.4)
    assert done.units_at.tolist() == pytest.approx([40.0, 86.4], rel=1e-15)
    assert done.cash == pytest.approx(600.0 - 432.0, rel=1e-15)


def test_an_entry_whose_fill_costs_nothing_is_an_error_naming_the_event() -> None:
    with pytest.raises(ValueError, match="cannot execute event 1: its fill price times"):
        _replay([(0, 0, True, 1, 10.0), (0, 1, True, 1, 0.0)], cash=0.0)
    with pytest.raises(ValueError, match="cannot execute event 0: its fill price times"):
        _replay([(0, 0, True, 1, 0.0)])


def test_a_symbol_without_closes_or_a_mark_bar_outside_them_is_an_error() -> None:
    events = [(0, 0, True, 1, 10.0), (1, 0, True, 1, 5.0)]
    with pytest.raises(ValueError, match="event 1: its symbol index is outside"):
        _replay(events)  # one symbol's closes for two symbols
    with pytest.raises(ValueError, match="event 1: its mark bar is outside the closes"):
        _replay(events, closes=[[10.0], [5.0]], mark_bar=[0, 3], size=0.5)


def test_a_step_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ValueError, match=r"step: expected a positive quantity step, got 0\.0"):
        _replay([(0, 0, True, 1, 10.0)], step=0.0)
