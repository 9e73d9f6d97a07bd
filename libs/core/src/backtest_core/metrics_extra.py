"""The statistics users compare with peers: buy-and-hold, SQN, Kelly fraction, probabilistic Sharpe.

Conventions (docs/metrics.md), each matching a peer:
- `buy_and_hold_return_pct`: equal-weight buy at each symbol's first close, sell at its last close,
  in percent; one symbol: backtesting.py's "Buy & Hold Return [%]".
- `system_quality_number`: Van Tharp's SQN, sqrt(n) * mean(pnl) / sample std(pnl) over the trades'
  net pnl; backtesting.py's "SQN".
- `kelly_fraction`: win rate - (1 - win rate) / (average win / |average loss|); backtesting.py's
  "Kelly Criterion".
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

from backtest_core.metrics import DEGENERATE_REL, Values


def buy_and_hold_return_pct(closes: Sequence[np.ndarray]) -> float | None:
    """Return the equal-weight buy-and-hold return of the symbols' closes in percent, None without bars."""
    returns = [float(c[-1]) / float(c[0]) - 1.0 for c in closes if len(c) and c[0] > 0]
    return 100.0 * sum(returns) / len(returns) if returns else None


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
    r = np.asarray(returns, np.float64)
    if len(r) < 3 or not np.isfinite(r).all():
        return None
    mean, sd = float(r.mean()), float(r.std(ddof=1))
    if not sd > DEGENERATE_REL * abs(mean):
        return None
    centred = r - mean
    m2 = float(np.mean(centred**2))
    skew = float(np.mean(centred**3)) / m2**1.5
    kurt = float(np.mean(centred**4)) / m2**2
    sr = mean / sd
    variance = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr
    if not variance > 0:
        return None
    z = (sr - benchmark_sharpe) * math.sqrt(len(r) - 1) / math.sqrt(variance)
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
