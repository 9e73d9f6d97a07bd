"""Generate proposals per work unit in parallel and merge them onto one time-ordered timeline."""

from __future__ import annotations

import functools
import math
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from backtest_core.engine.proposals import (
    EXIT_AT_CLOSE,
    EXIT_KIND,
    ProposalSettings,
    ProposalTable,
    build_proposals,
)
from backtest_core.errors import ConfigError, StrategyRuntimeError
from backtest_core.model.candles import Candles
from backtest_core.model.config import BacktestConfig
from backtest_core.strategy import (
    NO_SIGNAL,
    SIDE_CODE,
    BaseStrategy,
    Side,
    Signal,
    SignalArrays,
    Window,
    as_signal,
)
from backtest_core.strategy.loader import load_strategy

SignalPath = Literal["auto", "per_bar", "vectorized"]
_CORE_DIR = str(Path(__file__).resolve().parents[1])  # backtest_core/
Progress = Callable[[float], None]
SymbolProgress = Callable[[str, float], None]  # (symbol, share of its bars decided)
# Where the signals come from: this process, or a separate strategy process
# (backtest_core.sandbox.strategy_process).
SignalSource = Callable[
    [BacktestConfig, Mapping[str, Candles], SignalPath, SymbolProgress | None], dict[str, SignalArrays]
]
PROGRESS_STEPS = 50  # per-bar progress reports per symbol
MIN_PROGRESS_CHUNK = 1_000  # bars decided between two reports, at least


def compute_signals(
    strategy: BaseStrategy,
    candles: Candles,
    interval: str,
    path: SignalPath = "auto",
    progress: Progress | None = None,
) -> SignalArrays:
    """Return the strategy's signals for every bar (NO before the first full look-back window).

    Raise ConfigError when the look-back is longer than the data (it could never decide once).
    """
    lookback = strategy.get_required_lookback()
    if not isinstance(lookback, int) or lookback < 1:
        raise ConfigError(f"get_required_lookback() must return an int >= 1, was {lookback!r}")
    n = len(candles)
    if lookback > n:
        raise ConfigError(
            f"{type(strategy).__name__} needs {lookback} bars (get_required_lookback()), the data of "
            f"{candles.symbol} has {n}: give a longer range or a shorter look-back"
        )
    vectorized = strategy.has_vectorized() if path == "auto" else path == "vectorized"
    try:
        if vectorized:
            out = strategy.decide_vectorized(candles, interval, **strategy.values)
            if out is None:
                raise ConfigError(f"{type(strategy).__name__} has no vectorized path")
            _check_arrays(out, n)
            out.side[: min(lookback - 1, n)] = 0
            return out
        return _per_bar(strategy, candles, interval, lookback, progress)
    except (ConfigError, StrategyRuntimeError):
        raise
    except Exception as exc:
        raise StrategyRuntimeError(
            f"{type(strategy).__name__} raised {type(exc).__name__} on {candles.symbol}: {exc}",
            user_traceback(exc),
        ) from exc


def _per_bar(
    strategy: BaseStrategy, candles: Candles, interval: str, lookback: int, progress: Progress | None
) -> SignalArrays:
    n = len(candles)
    window = Window(candles, 0, 0)
    decide, params = strategy.decide, strategy.values
    bars: list[int] = []
    found: list[Signal] = []
    no = Side.NO
    first = lookback - 1
    chunk = max(MIN_PROGRESS_CHUNK, math.ceil((n - first) / PROGRESS_STEPS)) if progress else max(n, 1)
    for lo in range(first, n, chunk):
        for t in range(lo, min(n, lo + chunk)):
            window._start = t + 1 - lookback
            window._stop = t + 1
            sig = decide(window, interval, **params)
            if sig is NO_SIGNAL:
                continue
            if type(sig) is not Signal or type(sig.side) is not Side:
                sig = as_signal(sig)
            if sig.side is not no:
                bars.append(t)
                found.append(sig)
        if progress:
            progress(min(1.0, (lo + chunk - first) / max(1, n - first)))
    out = SignalArrays.empty(n)
    for t, sig in zip(bars, found, strict=True):
        out.side[t] = SIDE_CODE[sig.side]
        out.entry_price[t] = np.nan if sig.entry_price is None else sig.entry_price
        out.take_profit[t] = np.nan if sig.take_profit is None else sig.take_profit
        out.stop_loss[t] = np.nan if sig.stop_loss is None else sig.stop_loss
        out.confidence[t] = sig.confidence
    return out


def _check_arrays(out: SignalArrays, n: int) -> None:
    for name in ("side", "entry_price", "take_profit", "stop_loss", "confidence"):
        if len(getattr(out, name)) != n:
            raise ConfigError(
                f"decide_vectorized: {name} must have {n} values, had {len(getattr(out, name))}"
            )


def user_traceback(exc: BaseException) -> str:
    """Return the traceback text of exc, keeping only frames outside backtest_core (the user's code)."""
    frames = traceback.extract_tb(exc.__traceback__)
    user = [f for f in frames if not f.filename.startswith(_CORE_DIR)] or frames
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(user)]
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)


def strategy_signals(
    strategy: BaseStrategy,
    candles: Mapping[str, Candles],
    interval: str,
    parallel: int = 1,
    path: SignalPath = "auto",
    on_progress: SymbolProgress | None = None,
) -> dict[str, SignalArrays]:
    """Return each symbol's signals, computed per work unit in a pool of `parallel` threads.

    `on_progress(symbol, fraction)` is told the share of that symbol's bars decided (1.0 when done).
    """
    units = _work_units(strategy, list(candles))
    lock = threading.Lock()

    def report(symbol: str, fraction: float) -> None:
        if on_progress is not None:
            with lock:
                on_progress(symbol, fraction)

    def run(unit: Sequence[str]) -> list[tuple[str, SignalArrays]]:
        out = []
        for symbol in unit:
            within = None if on_progress is None else functools.partial(report, symbol)
            out.append((symbol, compute_signals(strategy, candles[symbol], interval, path, within)))
            report(symbol, 1.0)
        return out

    if parallel <= 1 or len(units) <= 1:
        results = [run(u) for u in units]
    else:
        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="signals") as pool:
            results = list(pool.map(run, units))
    return {symbol: signals for unit in results for symbol, signals in unit}


def in_process_signals(
    config: BacktestConfig,
    candles: Mapping[str, Candles],
    path: SignalPath = "auto",
    on_progress: SymbolProgress | None = None,
) -> dict[str, SignalArrays]:
    """Load the configured strategy in this process and return its signals for every symbol."""
    strategy = load_strategy(config.strategy, config.params)
    return strategy_signals(strategy, candles, config.interval, config.parallel_symbols, path, on_progress)


def generate_proposals(
    strategy: BaseStrategy,
    candles: Mapping[str, Candles],
    interval: str,
    settings: ProposalSettings,
    parallel: int = 1,
    path: SignalPath = "auto",
) -> dict[str, ProposalTable]:
    """Return each symbol's proposals from the strategy's signals (see strategy_signals)."""
    signals = strategy_signals(strategy, candles, interval, parallel, path)
    return {symbol: build_proposals(candles[symbol], signals[symbol], settings) for symbol in signals}


def _work_units(strategy: BaseStrategy, symbols: list[str]) -> list[list[str]]:
    units = [list(u) for u in strategy.work_units(symbols)]
    seen: list[str] = [s for u in units for s in u]
    unknown = sorted(set(seen) - set(symbols))
    if unknown or len(seen) != len(set(seen)):
        raise ConfigError(f"work_units must use each of {symbols} at most once, returned {units}")
    return units


@dataclass(frozen=True, slots=True)
class Timeline:
    """Every entry and exit event of every symbol in one deterministic total order.

    Order: bar open time, then moment within the bar (exits before entries), then symbol (its position
    in config.symbols), then proposal sequence number. `union_bar` is the event's bar on the union
    time grid of all symbols; `mark_bar` the last union bar whose close is known at the event.
    `moment` is the moment within the bar, `bar` the bar in the symbol's own candles, `reason` the
    exit reason code (-1 for entries).
    """

    symbol: np.ndarray
    seq: np.ndarray
    is_entry: np.ndarray
    direction: np.ndarray
    price: np.ndarray
    price_kind: np.ndarray
    union_bar: np.ndarray
    mark_bar: np.ndarray
    moment: np.ndarray
    bar: np.ndarray
    reason: np.ndarray

    def __len__(self) -> int:
        return len(self.symbol)


def merge_timeline(
    tables: Mapping[str, ProposalTable],
    candles: Mapping[str, Candles],
    symbols: Sequence[str],
    union: np.ndarray,
) -> Timeline:
    """Merge all symbols' proposals onto one timeline (see Timeline for the order)."""
    parts: list[tuple[np.ndarray, ...]] = []
    for code, symbol in enumerate(symbols):
        t = tables.get(symbol)
        if t is None or len(t) == 0:
            continue
        times = candles[symbol].open_time
        on_union = times is union or (len(times) == len(union) and np.array_equal(times, union))
        seq = np.arange(len(t))
        kinds = np.asarray(EXIT_KIND, np.int8)[t.exit_reason]
        for entering, bar, moment, price, kind, reason in (
            (True, t.entry_bar, t.entry_moment, t.entry_price, t.entry_kind, np.full(len(t), -1, np.int8)),
            (False, t.exit_bar, t.exit_moment, t.exit_price, kinds, t.exit_reason),
        ):
            parts.append(
                (
                    bar if on_union else np.searchsorted(union, times[bar]),
                    moment,
                    np.full(len(t), code),
                    seq,
                    np.full(len(t), entering),
                    t.direction,
                    price,
                    kind,
                    bar,
                    reason,
                )
            )
    if not parts:
        e = np.zeros(0, np.int64)
        return Timeline(e, e, e.astype(bool), e, e.astype(float), e, e, e, e, e, e)
    union_bar, moment, sym, seq, is_entry, direction, price, kind, bar, reason = (
        np.concatenate(c) for c in zip(*parts, strict=True)
    )
    order = event_order(union_bar, moment, sym, seq, len(union), len(symbols))
    union_bar, moment = union_bar[order], moment[order]
    mark_bar = np.where(moment >= EXIT_AT_CLOSE, union_bar, union_bar - 1).clip(0)
    return Timeline(
        sym[order],
        seq[order],
        is_entry[order],
        direction[order],
        price[order],
        kind[order],
        union_bar,
        mark_bar,
        moment,
        bar[order],
        reason[order],
    )


_MOMENTS = 7  # EXIT_AT_OPEN .. MARK_AT_END


def event_order(
    bar: np.ndarray, moment: np.ndarray, sym: np.ndarray, seq: np.ndarray, bars: int, symbols: int
) -> np.ndarray:
    """Return the permutation sorting events by (bar, moment, symbol, seq): the keys are unique.

    One argsort of the four packed into an int64 key, or a lexsort when packing would overflow.
    """
    seqs = int(seq.max()) + 1 if len(seq) else 1
    if bars * _MOMENTS * symbols * seqs >= 2**62:
        return np.lexsort((seq, sym, moment, bar))
    packed = (bar * _MOMENTS + moment) * (symbols * seqs) + sym * seqs + seq
    order: np.ndarray = np.argsort(packed, kind="stable")
    return order
