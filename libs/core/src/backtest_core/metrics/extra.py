"""The statistics users compare with peers: buy-and-hold, SQN, Kelly fraction, probabilistic Sharpe.

Conventions (docs/metrics.md), each matching a peer:
- `buy_and_hold_return_pct`: equal-weight buy at each symbol's first close, sell at its last close,
  in percent; one symbol: backtesting.py's "Buy & Hold Return [%]".
- `system_quality_number`: Van Tharp's SQN, sqrt(n) * mean(pnl) / sample std(pnl) over the trades'
  net pnl; backtesting.py's "SQN".
- `kelly_fraction`: win rate - (1 - win rate) / (average win / |average loss|); backtesting.py's
  "Kelly Criterion".
- `buy_and_hold_value`, `alpha_beta`: the benchmark is that buy-and-hold on the run's bars (each
  symbol's last known close over its first, equal weights, 1 before its first bar); beta =
  cov(r, b) / var(b) and alpha = (1 + mean(r - beta * b))^periods per year - 1 (in percent) of the
  per-bar returns r of the equity and b of the benchmark; empyrical's `alpha_beta`.
- `probabilistic_sharpe`: Bailey and Lopez de Prado (2012), the probability that the true per-bar
  Sharpe ratio exceeds 0 given the observed one, its T returns, their skewness and (non-excess)
  kurtosis: PSR = Phi(SR * sqrt(T - 1) / sqrt(1 - skew * SR + (kurt - 1) / 4 * SR^2)), SR per bar with
  the sample standard deviation as in `sharpe_ratio`, skewness and kurtosis from population moments.
Undefined values are None (too few trades or returns, no dispersion).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from backtest_core.metrics.performance import DEGENERATE_REL, Values, return_moments


def buy_and_hold_return_pct(closes: Sequence[np.ndarray]) -> float | None:
    """Return the equal-weight buy-and-hold return of the symbols' closes in percent, None without bars."""
    returns = [float(c[-1]) / float(c[0]) - 1.0 for c in closes if len(c) and c[0] > 0]
    return 100.0 * sum(returns) / len(returns) if returns else None


def buy_and_hold_value(closes_on_grid: Sequence[np.ndarray]) -> np.ndarray:
    """Return the value of 1 spread equally over the symbols at their first close, at every bar.

    `closes_on_grid[k]` is symbol k's last known close at each bar, 0 before its first bar (its share
    is held as cash until then). The last value - 1 is `buy_and_hold_return_pct` / 100.
    """
    total: np.ndarray | None = None
    count = 0
    for closes in closes_on_grid:
        c = np.asarray(closes, np.float64)
        first = int(np.argmax(c > 0)) if len(c) else 0
        if not len(c) or not c[first] > 0:
            continue
        share = c / c[first]
        share[:first] = 1.0  # before its first bar (close 0) the share is cash
        if total is None:
            total = share
        else:
            total += share
        count += 1
    if total is None:
        return np.zeros(0)
    if count > 1:
        total /= count
    return total


def alpha_beta(returns: np.ndarray, benchmark: np.ndarray, ppy: float) -> tuple[float | None, float | None]:
    """Return (annualised alpha in percent, beta) of per-bar returns against the benchmark's.

    None for both below 2 returns, with a non-finite return or a benchmark without dispersion; alpha
    alone is None when it would not be a finite number.
    """
    r, b = np.asarray(returns, np.float64), np.asarray(benchmark, np.float64)
    if len(r) != len(b):
        raise ValueError(f"expected one benchmark return per return ({len(r)}), got {len(b)}")
    if len(r) < 2:
        return None, None
    mean_r, mean_b = float(r.mean()), float(b.mean())
    if not (math.isfinite(mean_r) and math.isfinite(mean_b)):  # a NaN or infinite return
        return None, None
    centred = b - mean_b
    # numpy's pairwise sums, not np.dot: BLAS's order of summing depends on the process (its kernel and
    # threads), so a dot product differed in the last bit between the host and the sandbox image.
    variance = float(np.add.reduce(centred * centred)) / len(b)
    if not variance > (DEGENERATE_REL * abs(mean_b)) ** 2:
        return None, None
    beta = float(np.add.reduce(centred * r)) / len(b) / variance
    excess = mean_r - beta * mean_b  # mean(r - beta * b)
    growth = ppy * math.log1p(excess) if excess > -1.0 else math.inf
    alpha = math.expm1(growth) * 100.0 if growth < 700.0 else None  # beyond e^700: no finite alpha
    return alpha, beta


def system_quality_number(pnls: Values) -> float | None:
    """Return sqrt(n) * mean / sample std of the trades' pnl, None below 2 trades or without dispersion."""
    a = np.asarray(pnls, np.float64)
    if len(a) < 2:
        return None
    mean, sd = float(a.mean()), float(a.std(ddof=1))
    if not sd > DEGENERATE_REL * abs(mean):
        return None
    return math.sqrt(len(a)) * mean / sd


def kelly_fraction(pnls: Values) -> float | None:
    """Return win rate - loss rate / payoff ratio, None without both a winning and a losing trade."""
    a = np.asarray(pnls, np.float64)
    wins, losses = a[a > 0], a[a < 0]
    if not len(wins) or not len(losses):
        return None
    win_rate = len(wins) / len(a)
    payoff = float(wins.mean()) / -float(losses.mean())
    return win_rate - (1.0 - win_rate) / payoff


def probabilistic_sharpe(returns: np.ndarray, benchmark_sharpe: float = 0.0) -> float | None:
    """Return P(true per-bar Sharpe > `benchmark_sharpe`), None below 3 returns or without dispersion."""
    r = np.ascontiguousarray(returns, np.float64)
    if len(r) < 3:
        return None
    m = return_moments(r)  # the moments sharpe_ratio uses, skewness and kurtosis in the same call
    if not math.isfinite(m.mean) or not m.sd > DEGENERATE_REL * abs(m.mean):  # a NaN or infinite return
        return None
    sr = m.mean / m.sd
    variance = 1.0 - m.skew * sr + (m.kurt - 1.0) / 4.0 * sr * sr
    if not variance > 0:
        return None
    z = (sr - benchmark_sharpe) * math.sqrt(len(r) - 1) / math.sqrt(variance)
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
