"""Indicators computed with one fixed arithmetic, so the per-bar and vectorized paths agree bit for bit.

Every window sum adds the window's values strictly oldest to newest, starting from the oldest value.
`window_sums` does that for all bars at once (one vector add per window position); `last_window_sum`
does it for the last window only (`np.cumsum` is a sequential left fold). Floating-point addition is
not associative, so mixing formulas (e.g. a cumsum difference) would flip crossovers on ties.

`window_sums` is the C kernel `backtest_core.native._kernels.window_sums` (several consecutive window sums in
SIMD registers at once, each one's adds still oldest first); its input is read as float64.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from backtest_core.native import _kernels


def window_sums(x: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Return s[t] = sum_{k<n} w[k]*x[t-n+1+k] (oldest first, sequential); NaN for t < n-1."""
    if int(n) < 1:
        raise ValueError(f"window length must be >= 1, was {n}")
    out = np.empty(len(x))
    w = None if weights is None else np.ascontiguousarray(weights, np.float64)
    _kernels.window_sums(np.ascontiguousarray(x, np.float64), int(n), w, out)
    return out


def last_window_sum(x: np.ndarray, n: int, weights: np.ndarray | None = None) -> float:
    """Return the window sum of `window_sums` for the last bar of x (x needs >= n values)."""
    tail = x[len(x) - n :]
    return float((tail if weights is None else weights * tail).cumsum()[-1])


def last_window_sums(x: np.ndarray, windows: tuple[tuple[int, int], ...]) -> list[float]:
    """Return `window_sums(x, n)[len(x) - 1 - lag]` for each (n, lag), bit for bit, in one numpy pass.

    For per-bar decide(): the windows are gathered as the columns of one matrix (padded after
    their end) and summed oldest first by one `np.add.accumulate` down the columns, read at each
    column's own length. x needs at least max(n + lag) values.
    """
    span, index, pick = _window_plan(windows)
    if len(x) < span:
        raise ValueError(f"need at least {span} values for windows {windows}, had {len(x)}")
    values: list[float] = _accumulate(x[len(x) - span :][index], 0).take(pick).tolist()
    return values


_accumulate = np.add.accumulate  # a sequential left fold, like window_sums' adds


@lru_cache(maxsize=256)
def _window_plan(windows: tuple[tuple[int, int], ...]) -> tuple[int, np.ndarray, np.ndarray]:
    """Return (span, gather index of shape (max n, windows), flat positions of the sums)."""
    span = max(n + lag for n, lag in windows)
    width = max(n for n, _ in windows)
    count = len(windows)
    index = np.empty((width, count), np.intp)
    pick = np.empty(count, np.intp)
    for col, (n, lag) in enumerate(windows):
        first = span - lag - n
        index[:, col] = np.minimum(first + np.arange(width), first + n - 1)
        pick[col] = (n - 1) * count + col
    return span, index, pick


def ema_weights(span: int, length: int) -> np.ndarray:
    """Return normalised EMA weights (alpha = 2/(span+1)) for a `length`-bar window, oldest first."""
    alpha = 2.0 / (span + 1.0)
    raw = (1.0 - alpha) ** np.arange(length - 1, -1, -1, dtype=np.float64)
    weights: np.ndarray = raw / raw.sum()
    return weights


def rolling_max(x: np.ndarray, n: int) -> np.ndarray:
    """Return max(x[t-n+1..t]); NaN for t < n-1 (max is exact, so any order agrees)."""
    out = np.full(len(x), np.nan)
    if len(x) >= n:
        out[n - 1 :] = sliding_window_view(x, n).max(axis=1)
    return out


def rolling_min(x: np.ndarray, n: int) -> np.ndarray:
    """Return min(x[t-n+1..t]); NaN for t < n-1."""
    out = np.full(len(x), np.nan)
    if len(x) >= n:
        out[n - 1 :] = sliding_window_view(x, n).min(axis=1)
    return out


def shift(x: np.ndarray, k: int = 1) -> np.ndarray:
    """Return x delayed by k bars (NaN for the first k)."""
    out = np.full(len(x), np.nan)
    if k < len(x):
        out[k:] = x[: len(x) - k]
    return out
