"""Trade proposals: turn one symbol's signals into non-overlapping positions with resolved exits.

A proposal is a position the strategy would hold if the portfolio accepts it: its entry fill and its
exit (take-profit, stop-loss, opposite signal, time limit or end of data) depend only on the symbol's
own bars and signals, so proposals of different symbols are built independently and in parallel.
The portfolio later accepts or rejects each one (cash, open position) when it replays the timeline.

Rules (config names in brackets):
- Entry: a BUY (or, with [allow_short], a SELL) while no proposal is open. Market entries fill at bar
  t+1's open [fill="next_open"] or at bar t's close [fill="close"]; a signal on the last bar never
  fills in next_open mode. A signal with `entry_price` is a limit order valid on bar t+1 only: it fills
  at the better of the open and the limit if the bar reaches it, else the proposal is dropped.
- Signals in the direction of the open proposal are ignored. An opposite signal at bar s exits at the
  same fill convention (open of s+1 or close of s); with allow_short that signal also opens the reverse.
- Take-profit / stop-loss are checked from the first bar whose range follows the entry, up to the bar
  of the market exit. A bar that opens beyond the stop (or the target) exits at its open. A bar whose
  range touches both: [same_bar] "stop_first" exits at the stop, "target_first" at the target.
- [max_holding_bars] H: a market exit H bars after the entry bar (open of e+H or close of e+H);
  on a tie with an opposite signal the signal is the reason.
- Still open after the last bar: marked at the last close ("end_of_data"), not a fill.
- An order that cannot make sense is an error (OrderError), not a trade: a BUY that may open a long
  whose take-profit is below, or whose stop-loss is above, its entry reference (the limit price if
  given, else the signal bar's close: the last price the strategy saw), and the mirror for a SELL that
  may open a short (with [allow_short]). Every such signal counts, whether or not a position is open.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Literal

import numpy as np

from backtest_core.errors import OrderError
from backtest_core.model.candles import Candles
from backtest_core.strategy import SignalArrays

# Exit reasons, indexed by code.
EXIT_REASONS = ("take_profit", "stop_loss", "signal", "time_limit", "end_of_data")
TAKE_PROFIT, STOP_LOSS, SIGNAL, TIME_LIMIT, END_OF_DATA = range(5)

# Moments within a bar, in time order. Exits come before entries at the same moment.
EXIT_AT_OPEN, ENTRY_AT_OPEN, EXIT_INTRABAR, ENTRY_INTRABAR, EXIT_AT_CLOSE, ENTRY_AT_CLOSE, MARK_AT_END = (
    range(7)
)

# How a fill is priced: market/stop pay taker + slippage, limit pays maker, mark pays nothing.
MARKET, LIMIT, STOP, MARK = range(4)
EXIT_KIND = (LIMIT, STOP, MARKET, MARKET, MARK)


@dataclass(frozen=True, slots=True)
class ProposalSettings:
    """The config settings proposals depend on."""

    fill: Literal["next_open", "close"] = "next_open"
    allow_short: bool = False
    same_bar: Literal["stop_first", "target_first"] = "stop_first"
    max_holding_bars: int | None = None
    tick_size: float | None = None


@dataclass(frozen=True, slots=True)
class ProposalTable:
    """One symbol's proposals as parallel arrays (row i = proposal seq i); the engine's hot format."""

    symbol: str
    direction: np.ndarray
    signal_bar: np.ndarray
    entry_bar: np.ndarray
    entry_moment: np.ndarray
    entry_price: np.ndarray
    entry_kind: np.ndarray
    take_profit: np.ndarray
    stop_loss: np.ndarray
    confidence: np.ndarray
    exit_bar: np.ndarray
    exit_moment: np.ndarray
    exit_price: np.ndarray
    exit_reason: np.ndarray

    def __len__(self) -> int:
        return len(self.direction)


def _round_tick(x: np.ndarray, tick: float | None) -> np.ndarray:
    return x if tick is None else np.round(x / tick) * tick


def _first_hit(low: np.ndarray, high: np.ndarray, a: int, b: int, d: int, tp: float, sl: float) -> int:
    """Return the first bar in [a, b] whose range reaches tp or sl (NaN = unset), or -1."""
    step = 16
    while a <= b:
        z = min(b + 1, a + step)
        lo, hi = low[a:z], high[a:z]
        mask = ((lo <= sl) | (hi >= tp)) if d > 0 else ((hi >= sl) | (lo <= tp))
        k = int(mask.argmax())
        if mask[k]:
            return a + k
        a = z
        step *= 4
    return -1


def build_proposals(candles: Candles, signals: SignalArrays, settings: ProposalSettings) -> ProposalTable:
    """Return the symbol's proposals (vectorized when only opposite signals can end them).

    Raise OrderError naming the first bar whose order cannot make sense (see `check_orders`).
    """
    check_orders(candles, signals, settings)
    side = signals.side
    nz = np.flatnonzero(side)
    sv = side[nz]
    cand = nz if settings.allow_short else nz[sv > 0]
    if (
        settings.max_holding_bars is None
        and ((sv == 1) | (sv == -1)).all()
        and np.isnan(signals.entry_price[cand]).all()
        and np.isnan(signals.take_profit[cand]).all()
        and np.isnan(signals.stop_loss[cand]).all()
    ):
        return signal_exit_proposals(candles, signals, settings, nz)
    return walk_proposals(candles, signals, settings)


def check_orders(candles: Candles, signals: SignalArrays, settings: ProposalSettings) -> None:
    """Raise OrderError if a signal that may open a position has its target or stop on the wrong side.

    A long's take-profit must be at or above its entry reference and its stop-loss at or below; a
    short's the other way round. The reference is the limit price, or the signal bar's close.
    """
    side = signals.side
    bars = np.flatnonzero(side != 0 if settings.allow_short else side > 0)
    tp, sl = signals.take_profit[bars], signals.stop_loss[bars]
    if np.isnan(tp).all() and np.isnan(sl).all():
        return
    limit = signals.entry_price[bars]
    reference = np.where(np.isnan(limit), candles.close[bars], limit)
    d = np.sign(side[bars]).astype(np.float64)
    wrong_tp = d * (tp - reference) < 0  # NaN (not set) compares False
    wrong_sl = d * (sl - reference) > 0
    wrong = np.flatnonzero(wrong_tp | wrong_sl)
    if not len(wrong):
        return
    k = int(wrong[0])
    bar = int(bars[k])
    long = d[k] > 0
    what, value = ("take-profit", tp[k]) if wrong_tp[k] else ("stop-loss", sl[k])
    where = "below" if (what == "take-profit") == long else "above"
    basis = "the limit price" if limit[k] == limit[k] else "the bar's close"
    rule = (
        "a long's take-profit must be above its entry and its stop-loss below"
        if long
        else "a short's take-profit must be below its entry and its stop-loss above"
    )
    more = f"; {len(wrong) - 1} later bar(s) have the same problem" if len(wrong) > 1 else ""
    stamp = str(np.datetime64(int(candles.open_time[bar]), "ns").astype("datetime64[s]")) + "Z"
    raise OrderError(
        f"{candles.symbol} bar {bar} ({stamp}): {'BUY' if long else 'SELL'} with {what} {float(value):.10g} "
        f"{where} its entry reference {float(reference[k]):.10g} ({basis}); {rule}{more}"
    )


def signal_exit_proposals(
    candles: Candles, signals: SignalArrays, settings: ProposalSettings, nz: np.ndarray | None = None
) -> ProposalTable:
    """Return the proposals of market entries without take-profit, stop-loss or time limit, vectorized.

    Same result as `walk_proposals` for such signals: the non-zero signals form runs of equal side;
    a proposal opens at the first signal of each BUY run (of every run with allow_short) and its
    market exit is the first signal of the next run (or the end of data). `nz`: flatnonzero(side).
    """
    n = len(candles)
    side = signals.side
    if nz is None:
        nz = np.flatnonzero(side)
    sv = side[nz]
    change = np.ones(len(nz), bool)
    change[1:] = sv[1:] != sv[:-1]
    run_bar, run_side = nz[change], sv[change]
    next_run = np.append(run_bar[1:], n)[: len(run_bar)]  # no signal: no run, no next run
    if not settings.allow_short:
        keep = run_side > 0
        run_bar, run_side, next_run = run_bar[keep], run_side[keep], next_run[keep]
    s, m = run_bar, next_run
    next_open = settings.fill == "next_open"
    if next_open:
        ok = s + 1 < n  # a signal on the last bar never fills
        s, m, run_side = s[ok], m[ok], run_side[ok]
        e = s + 1
        price = candles.open[e]
        x = m + 1
    else:
        e = s
        price = candles.close[e]
        x = m.copy()
    k = len(s)
    end = x >= n
    x[end] = n - 1
    xprice = np.where(end, candles.close[x], candles.open[x]) if next_open else candles.close[x]
    exit_moment = np.where(end, MARK_AT_END, EXIT_AT_OPEN if next_open else EXIT_AT_CLOSE).astype(np.int8)
    return ProposalTable(
        symbol=candles.symbol,
        direction=run_side.astype(np.int8),
        signal_bar=s.astype(np.int64),
        entry_bar=e.astype(np.int64),
        entry_moment=np.full(k, ENTRY_AT_OPEN if next_open else ENTRY_AT_CLOSE, np.int8),
        entry_price=price,
        entry_kind=np.full(k, MARKET, np.int8),
        take_profit=signals.take_profit[s].astype(np.float64),
        stop_loss=signals.stop_loss[s].astype(np.float64),
        confidence=signals.confidence[s].astype(np.float64),
        exit_bar=x.astype(np.int64),
        exit_moment=exit_moment,
        exit_price=xprice,
        exit_reason=np.where(end, END_OF_DATA, SIGNAL).astype(np.int8),
    )


def walk_proposals(candles: Candles, signals: SignalArrays, settings: ProposalSettings) -> ProposalTable:
    """Walk the signals event by event (never bar by bar) and return the symbol's proposals."""
    n = len(candles)
    side = signals.side
    buys = np.flatnonzero(side == 1).tolist()
    sells = np.flatnonzero(side == -1).tolist()
    cand = np.flatnonzero(side != 0).tolist() if settings.allow_short else buys
    tick = settings.tick_size
    entry_limit = _round_tick(signals.entry_price, tick)
    tps = _round_tick(signals.take_profit, tick)
    sls = _round_tick(signals.stop_loss, tick)
    op, hi, lo, cl = candles.open, candles.high, candles.low, candles.close
    next_open = settings.fill == "next_open"
    hold = settings.max_holding_bars
    stop_first = settings.same_bar == "stop_first"
    rows: list[tuple[int, int, int, int, float, int, float, float, float, int, int, float, int]] = []
    start = 0
    while True:
        k = bisect_left(cand, start)
        if k >= len(cand):
            break
        s = cand[k]
        d = 1 if side[s] > 0 else -1
        limit = float(entry_limit[s])
        if limit != limit:  # market entry
            if next_open:
                e, moment, kind = s + 1, ENTRY_AT_OPEN, MARKET
                if e >= n:
                    break
                price = float(op[e])
            else:
                e, moment, kind, price = s, ENTRY_AT_CLOSE, MARKET, float(cl[s])
            first = e if next_open else e + 1
        else:  # limit entry, valid on bar s+1 only
            e, kind = s + 1, LIMIT
            if e >= n:
                break
            o = float(op[e])
            if (d > 0 and o <= limit) or (d < 0 and o >= limit):
                price, moment, first = o, ENTRY_AT_OPEN, e
            elif (d > 0 and lo[e] <= limit) or (d < 0 and hi[e] >= limit):
                price, moment, first = limit, ENTRY_INTRABAR, e + 1
            else:
                start = s + 1
                continue
        # The market exit: opposite signal or time limit, as a "signal bar" m.
        opp = sells if d > 0 else buys
        j = bisect_right(opp, s)
        m = opp[j] if j < len(opp) else n
        reason = SIGNAL
        if hold is not None:
            m_time = e + hold - 1 if next_open else e + hold
            if m_time < m:
                m, reason = m_time, TIME_LIMIT
        tp, sl = float(tps[s]), float(sls[s])
        hit = -1
        if tp == tp or sl == sl:
            hit = _first_hit(lo, hi, first, min(m, n - 1), d, tp, sl)
        if hit >= 0:
            x = hit
            o = float(op[x])
            if (d > 0 and o <= sl) or (d < 0 and o >= sl):
                reason, xprice, xmoment = STOP_LOSS, o, EXIT_AT_OPEN
            elif (d > 0 and o >= tp) or (d < 0 and o <= tp):
                reason, xprice, xmoment = TAKE_PROFIT, o, EXIT_AT_OPEN
            else:
                hit_sl = (lo[x] <= sl) if d > 0 else (hi[x] >= sl)
                hit_tp = (hi[x] >= tp) if d > 0 else (lo[x] <= tp)
                if hit_sl and (stop_first or not hit_tp):
                    reason, xprice = STOP_LOSS, sl
                else:
                    reason, xprice = TAKE_PROFIT, tp
                xmoment = EXIT_INTRABAR
            if x == e and xmoment <= moment:
                xmoment = EXIT_INTRABAR
            next_start = x
        else:
            x = m + 1 if next_open else m
            if x < n:
                xprice = float(op[x]) if next_open else float(cl[x])
                xmoment = EXIT_AT_OPEN if next_open else EXIT_AT_CLOSE
                next_start = m if reason == SIGNAL else m + 1
            else:
                x, xprice, xmoment, reason, next_start = n - 1, float(cl[n - 1]), MARK_AT_END, END_OF_DATA, n
        conf = float(signals.confidence[s])
        rows.append((d, s, e, moment, price, kind, tp, sl, conf, x, xmoment, xprice, reason))
        start = next_start
    return _table(candles.symbol, rows)


def _table(
    symbol: str, rows: list[tuple[int, int, int, int, float, int, float, float, float, int, int, float, int]]
) -> ProposalTable:
    cols = list(zip(*rows, strict=True)) if rows else [()] * 13
    ints = np.int64
    return ProposalTable(
        symbol=symbol,
        direction=np.array(cols[0], np.int8),
        signal_bar=np.array(cols[1], ints),
        entry_bar=np.array(cols[2], ints),
        entry_moment=np.array(cols[3], np.int8),
        entry_price=np.array(cols[4], np.float64),
        entry_kind=np.array(cols[5], np.int8),
        take_profit=np.array(cols[6], np.float64),
        stop_loss=np.array(cols[7], np.float64),
        confidence=np.array(cols[8], np.float64),
        exit_bar=np.array(cols[9], ints),
        exit_moment=np.array(cols[10], np.int8),
        exit_price=np.array(cols[11], np.float64),
        exit_reason=np.array(cols[12], np.int8),
    )
