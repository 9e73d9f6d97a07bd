"""Is the winner of a search luck? The deflated Sharpe ratio and the probability of backtest overfitting.

- `expected_max_sharpe(n, variance)`: Bailey and Lopez de Prado (2014), the expected maximum of `n`
  Sharpe ratios drawn with that variance when every true Sharpe is 0:
  sqrt(V) * ((1 - g) * Z^-1(1 - 1/n) + g * Z^-1(1 - 1/(n e))), g the Euler-Mascheroni constant.
- `deflated_sharpe(returns, trial_sharpes)`: the probabilistic Sharpe ratio of the winner's per-bar
  returns against that expected maximum (backtest_core.metrics.extra.probabilistic_sharpe, one source).
  All Sharpe ratios here are per bar (not annualised), as in the paper; `metrics_per_bar_sharpe` turns a
  stored backtest's annualised Sharpe back into one (for N = every backtest a user ran of a strategy).
- `probability_of_overfitting(returns, splits)`: Bailey, Borwein, Lopez de Prado and Zhu (2015),
  combinatorially symmetric cross-validation. The T x N matrix of the N trials' per-bar returns is cut
  into `splits` (S, even) blocks of consecutive bars; for every choice of S/2 blocks as in-sample (the
  rest out-of-sample) the in-sample best trial's out-of-sample rank w in (0, 1) gives the logit
  ln(w / (1 - w)); PBO is the share of choices whose logit is <= 0 (the winner is at or below the
  out-of-sample median). Performance is the Sharpe ratio of each part.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from backtest_core.metrics.extra import probabilistic_sharpe
from backtest_core.metrics.performance import return_moments

EULER_GAMMA = 0.5772156649015329
PBO_SPLITS_DEFAULT = 16


def per_bar_sharpe(returns: np.ndarray) -> float | None:
    """mean / sample std of per-bar returns (not annualised); None below 2 returns or without dispersion."""
    if len(returns) < 2:
        return None
    moments = return_moments(returns)
    return moments.mean / moments.sd if moments.sd > 0 else None


def metrics_per_bar_sharpe(metrics: Mapping[str, Any] | None) -> float | None:
    """A stored backtest's Sharpe per bar: its annualised `sharpe` / sqrt(`periods_per_year`), or None."""
    if not metrics or metrics.get("sharpe") is None or not metrics.get("periods_per_year"):
        return None
    return float(metrics["sharpe"]) / math.sqrt(float(metrics["periods_per_year"]))


def expected_max_sharpe(n_trials: int, variance: float) -> float:
    """The expected maximum Sharpe ratio of `n_trials` trials of true Sharpe 0 (n >= 2)."""
    if n_trials < 2:
        raise ValueError(f"the expected maximum needs at least 2 trials, got {n_trials}")
    z = NormalDist().inv_cdf
    return math.sqrt(max(variance, 0.0)) * (
        (1.0 - EULER_GAMMA) * z(1.0 - 1.0 / n_trials) + EULER_GAMMA * z(1.0 - 1.0 / (n_trials * math.e))
    )


def deflated_sharpe(returns: np.ndarray, trial_sharpes: list[float]) -> float | None:
    """PSR of the winner's `returns` against the expected maximum of `trial_sharpes` (per bar)."""
    sharpes = [s for s in trial_sharpes if math.isfinite(s)]
    if len(sharpes) < 2:
        return None
    benchmark = expected_max_sharpe(len(sharpes), float(np.var(sharpes, ddof=1)))
    return probabilistic_sharpe(returns, benchmark)


def _part_sharpes(
    chosen: np.ndarray, sums: np.ndarray, squares: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """Sharpe of every trial over the blocks each row of `chosen` (combinations x blocks, 0/1) picks."""
    n = (chosen @ counts)[:, None]
    mean = (chosen @ sums) / n
    variance = ((chosen @ squares) - n * mean * mean) / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = mean / np.sqrt(variance)
    return np.where(np.isfinite(sharpe), sharpe, -np.inf)


@dataclass(frozen=True, slots=True)
class Overfitting:
    """PBO and the logits it counts (one per in-sample choice)."""

    pbo: float
    logits: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class BlockSums:
    """What CSCV needs of one trial's returns: per block of consecutive bars the sum and the sum of
    squares (a NaN or infinite return counts as 0), so a sweep keeps S x 2 numbers a trial, not T."""

    sums: np.ndarray
    squares: np.ndarray

    @classmethod
    def of(cls, returns: np.ndarray, splits: int) -> BlockSums:
        """Cut `returns` into `splits` blocks as np.array_split does and sum each."""
        r = np.asarray(returns, np.float64)
        if not np.isfinite(r).all():
            r = np.nan_to_num(r, nan=0.0, posinf=0.0, neginf=0.0)
        starts = block_starts(len(r), splits)
        return cls(np.add.reduceat(r, starts), np.add.reduceat(r * r, starts))


def block_starts(bars: int, splits: int) -> np.ndarray:
    """The first bar of each of `splits` blocks of `bars` bars (np.array_split's cut: larger blocks first)."""
    size, extra = divmod(bars, splits)
    lengths = np.full(splits, size, np.int64)
    lengths[:extra] += 1
    return np.concatenate([[0], np.cumsum(lengths)[:-1]])


def probability_of_overfitting(returns: np.ndarray, splits: int = PBO_SPLITS_DEFAULT) -> Overfitting | None:
    """CSCV over a T x N matrix of per-bar returns; None for fewer than 2 trials or 2 bars per block."""
    r = np.asarray(returns, np.float64)
    if r.ndim != 2:
        raise ValueError(f"expected a bars x trials matrix, got shape {r.shape}")
    _check_splits(splits)
    if r.shape[0] < 2 * splits:
        return None
    return overfitting_of_blocks([BlockSums.of(r[:, j], splits) for j in range(r.shape[1])], r.shape[0])


def _check_splits(splits: int) -> None:
    if splits < 2 or splits % 2:
        raise ValueError(f"splits must be an even number >= 2, got {splits}")


def overfitting_of_blocks(trials: list[BlockSums], bars: int) -> Overfitting | None:
    """CSCV over the block sums of N trials of `bars` returns each (see BlockSums); None for fewer than
    2 trials or 2 bars per block."""
    if len(trials) < 2:
        return None
    splits = len(trials[0].sums)
    _check_splits(splits)
    if bars < 2 * splits:
        return None
    sums = np.column_stack([t.sums for t in trials])
    squares = np.column_stack([t.squares for t in trials])
    counts = np.diff(np.append(block_starts(bars, splits), bars)).astype(np.float64)
    chosen = np.zeros((math.comb(splits, splits // 2), splits))
    for row, blocks_in in enumerate(itertools.combinations(range(splits), splits // 2)):
        chosen[row, list(blocks_in)] = 1.0
    in_sample = _part_sharpes(chosen, sums, squares, counts)
    out_of_sample = _part_sharpes(1.0 - chosen, sums, squares, counts)
    best = np.argmax(in_sample, axis=1)
    best_oos = out_of_sample[np.arange(len(best)), best][:, None]
    below = np.sum(out_of_sample < best_oos, axis=1)
    ties = np.sum(out_of_sample == best_oos, axis=1) - 1
    w = (1 + below + 0.5 * ties) / (len(trials) + 1)
    logits = [math.log(x / (1.0 - x)) for x in w]
    return Overfitting(sum(1 for x in logits if x <= 0) / len(logits), tuple(logits))
