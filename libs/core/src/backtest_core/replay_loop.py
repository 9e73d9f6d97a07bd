"""The replay's sequential loop: which entries execute and with how many units, in C or in Python.

`replay_events` runs the C loop (`backtest_core._replay`, built by `pip install libs/core` with the
machine's C compiler) when it is importable, else `replay_events_python`; the two compute the same
doubles in the same order (the C file is compiled without FMA contraction or fast-math), so results
are bit-identical. Positions of several symbols are marked with the very BLAS `ddot` that numpy's
`coef.dot(row)` calls (numpy's bundled OpenBLAS, found by its symbol); without it the C loop is only
used when no mark is ever needed (one symbol). `NATIVE` says which loop runs and why.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

CASH_TOLERANCE = 1e-12
_DDOT_SYMBOL = "scipy_cblas_ddot64_"  # cblas_ddot with 64-bit ints in numpy's scipy-openblas build


@dataclass(frozen=True, slots=True)
class LoopResult:
    """Units of each executed entry (0 elsewhere), the exit event of each (-1), rejections, final cash."""

    units_at: np.ndarray
    exit_of: np.ndarray
    rejected: int
    cash: float


@dataclass(frozen=True, slots=True)
class ReplayInputs:
    """One replay's events (one entry per event, in timeline order) and its settings.

    `symbol`/`seq`: int64 symbol index and proposal sequence; `is_entry`: bool; `direction`: +1 long,
    -1 short; `fills`, `rates`: float64 fill price and fee rate; `mark_bar`: int64 row of `marks`
    (closes, bars x symbols; None for one symbol) that values open positions at an entry; `cash` at
    the start; `size`: fraction of equity per entry; `step`: quantity rounding or None.
    """

    symbol: np.ndarray
    seq: np.ndarray
    is_entry: np.ndarray
    direction: np.ndarray
    fills: np.ndarray
    rates: np.ndarray
    mark_bar: np.ndarray
    marks: np.ndarray | None
    cash: float
    size: float
    step: float | None
    n_symbols: int


@dataclass(frozen=True, slots=True)
class Native:
    """Whether the C loop is importable, the address of numpy's ddot (0 if not found), and why not."""

    module: ModuleType | None
    ddot: int
    reason: str

    @property
    def available(self) -> bool:
        """True when the C loop can run (shared-cash marking also needs `ddot`)."""
        return self.module is not None


def replay_events(inputs: ReplayInputs) -> LoopResult:
    """Replay the events in order (C loop if available); see `replay_events_python` for the rules."""
    if NATIVE.module is not None and (inputs.marks is None or NATIVE.ddot):
        done = replay_events_native(inputs)
        if done is not None:
            return done
    return replay_events_python(inputs)


def replay_events_native(inputs: ReplayInputs) -> LoopResult | None:
    """Run the C loop; return None when it stopped where Python would raise (run the Python loop then)."""
    if NATIVE.module is None:
        raise RuntimeError(f"the C replay loop is not available: {NATIVE.reason}")
    i = inputs
    events = len(i.symbol)
    units_at = np.zeros(events)
    exit_of = np.full(events, -1, np.int64)
    i64 = np.int64
    status, rejected, final_cash = NATIVE.module.replay(
        np.ascontiguousarray(i.symbol, i64),
        np.ascontiguousarray(i.seq, i64),
        np.ascontiguousarray(i.is_entry, np.bool_),
        np.ascontiguousarray(i.direction, i64),
        np.ascontiguousarray(i.fills, np.float64),
        np.ascontiguousarray(i.rates, np.float64),
        np.ascontiguousarray(i.mark_bar, i64),
        None if i.marks is None else np.ascontiguousarray(i.marks, np.float64),
        float(i.cash),
        float(i.size),
        None if i.step is None else float(i.step),
        int(i.n_symbols),
        NATIVE.ddot,
        units_at,
        exit_of,
    )
    if status != 0:
        return None
    return LoopResult(units_at, exit_of, rejected, final_cash)


def replay_events_python(inputs: ReplayInputs) -> LoopResult:
    """Replay the events in order in Python (the reference of the C loop).

    An entry of a flat symbol executes with units = size * equity / (fill * (1 + rate)) (rounded down
    to `step`), equity = cash + positions marked at the closes of its `mark_bar` (`marks[mark_bar]`),
    if it has units and its cost plus fee fits the cash; else it is rejected. An exit executes if its
    symbol's open position belongs to its `seq`. Cash moves as in `PortfolioManager`.
    """
    symbol, seq, is_entry, direction, fills, rates, mark_bar = (
        inputs.symbol,
        inputs.seq,
        inputs.is_entry,
        inputs.direction,
        inputs.fills,
        inputs.rates,
        inputs.mark_bar,
    )
    marks, size, step, n_symbols = inputs.marks, inputs.size, inputs.step, inputs.n_symbols
    cash = float(inputs.cash)
    tol = CASH_TOLERANCE
    events = len(symbol)
    fill_at = np.asarray(fills, np.float64).tolist()
    units_at = [0.0] * events  # units of each executed entry
    exit_of = [-1] * events  # for each executed entry, the event index of its exit
    open_event = [-1] * n_symbols  # event index of each symbol's open entry, -1 when flat
    open_seq = [-1] * n_symbols
    coef = np.zeros(n_symbols)
    dot = coef.dot  # same BLAS dot as `coef @ row`
    const = 0.0
    n_open = 0
    rejected = 0
    rows = zip(
        symbol.tolist(),
        seq.tolist(),
        is_entry.tolist(),
        direction.tolist(),
        fill_at,
        rates.tolist(),
        mark_bar.tolist(),
        strict=True,
    )
    for i, (sym, sq, entering, side, fill, rate, bar) in enumerate(rows):
        if entering:
            if open_seq[sym] >= 0:
                rejected += 1
                continue
            if n_open == 0:
                equity = cash
            elif marks is None:
                raise ValueError("marks are required to value positions of several symbols")
            else:
                equity = cash + const + float(dot(marks[bar]))
            units = size * equity / (fill * (1.0 + rate))
            if step is not None:
                units = math.floor(units / step + 1e-9) * step
            cost = units * fill
            fee = cost * rate
            if not units > 0 or cost + fee > cash + tol * abs(equity):
                rejected += 1
                continue
            cash -= cost + fee
            open_seq[sym] = sq
            open_event[sym] = i
            units_at[i] = units
            n_open += 1
            if side > 0:
                coef[sym] = units
            else:
                coef[sym] = -units
                const += 2.0 * units * fill
        elif open_seq[sym] == sq:  # the exit of the open position (side: the position's)
            e = open_event[sym]
            units = units_at[e]
            fee = units * fill * rate
            if side > 0:
                cash += units * fill - fee
            else:
                entry = fill_at[e]
                cash += units * (2.0 * entry - fill) - fee
                const -= 2.0 * units * entry
            open_seq[sym] = -1
            coef[sym] = 0.0
            n_open -= 1
            if n_open == 0:
                const = 0.0
            exit_of[e] = i
    return LoopResult(np.array(units_at), np.array(exit_of, np.int64), rejected, cash)


def marks_matrix(columns: Sequence[np.ndarray]) -> np.ndarray:
    """Return the `marks` input: float64[bars, symbols], column j = columns[j] (C tile copy if built)."""
    if NATIVE.module is None or not columns:
        return np.column_stack(columns)
    contiguous = tuple(np.ascontiguousarray(c, np.float64) for c in columns)
    out = np.empty((len(contiguous[0]), len(contiguous)))
    NATIVE.module.stack_columns(out, contiguous)
    return out


def _numpy_ddot() -> tuple[int, str]:
    """Return the address of the cblas_ddot numpy's dot calls (0 and why when it cannot be found).

    Found by its symbol in the OpenBLAS library loaded into this process (numpy's own), then checked
    bit for bit against `ndarray.dot` on vectors of many lengths.
    """
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
    except OSError as exc:
        return 0, f"cannot read /proc/self/maps ({exc})"
    for path in sorted(paths):
        try:
            func = getattr(ctypes.CDLL(path), _DDOT_SYMBOL)
        except (OSError, AttributeError):
            continue
        func.restype = ctypes.c_double
        func.argtypes = [ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64]
        rng = np.random.default_rng(7)
        for n in (*range(1, 70), 127, 128, 129, 1000):
            x, y = rng.normal(size=n), rng.normal(size=n) * 1e3
            if func(n, x.ctypes.data, 1, y.ctypes.data, 1) != float(x.dot(y)):
                return 0, f"{_DDOT_SYMBOL} in {Path(path).name} differs from numpy's dot"
        address = ctypes.cast(func, ctypes.c_void_p).value
        return int(address or 0), ""
    return 0, f"no {_DDOT_SYMBOL} in numpy's BLAS ({sorted(paths)})"


def _load() -> Native:
    try:
        from backtest_core import _replay
    except ImportError as exc:
        return Native(None, 0, f"backtest_core._replay is not built ({exc})")
    ddot, why = _numpy_ddot()
    return Native(_replay, ddot, "" if ddot else f"shared-cash runs use the Python loop: {why}")


NATIVE = _load()
