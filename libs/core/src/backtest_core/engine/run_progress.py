"""One progress fraction for a whole run that moves with the work, reported at most ~100 times.

The run's parts and their shares of [0, 1]: `signals` 0 -> SIGNALS_END, in proportion to the bars
decided (each symbol weighs its bar count; on the per-bar path a symbol also moves within itself),
then `portfolio` (the replay) SIGNALS_END -> PORTFOLIO_END, then `metrics` PORTFOLIO_END -> 1, then
`done` at 1. Each report names the part now running and the fraction of the work done before it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum

ProgressCallback = Callable[[float, str], None]
SIGNALS_END = 0.85
PORTFOLIO_END = 0.95
MIN_STEP = 0.01


class Stage(StrEnum):
    """The parts of a run, as reported in progress."""

    LOADING = "loading"
    SIGNALS = "signals"
    PORTFOLIO = "portfolio"
    METRICS = "metrics"
    DONE = "done"


class RunProgress:
    """Turn the parts of one run into fractions; forward one only when it moved >= 1% or the stage changed."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._last = -1.0
        self._stage = ""
        self._bars: dict[str, int] = {}
        self._decided: dict[str, float] = {}
        self._total = 1

    def loading(self) -> None:
        """Report the start: the job and the candles are being read."""
        self._emit(0.0, Stage.LOADING)

    def signals(self, bars: Mapping[str, int]) -> None:
        """Report that signals start for symbols with these bar counts."""
        self._bars = dict(bars)
        self._decided = dict.fromkeys(bars, 0.0)
        self._total = max(1, sum(self._bars.values()))
        self._emit(0.0, Stage.SIGNALS)

    def symbol(self, symbol: str, fraction: float) -> None:
        """Report that `fraction` of `symbol`'s bars are decided."""
        if symbol not in self._decided:
            return
        self._decided[symbol] = max(self._decided[symbol], min(1.0, max(0.0, fraction)))
        done = sum(self._decided[s] * self._bars[s] for s in self._bars)
        self._emit(SIGNALS_END * done / self._total, Stage.SIGNALS)

    def portfolio(self) -> None:
        """Report that every signal is in and the portfolio replay starts."""
        self._emit(SIGNALS_END, Stage.PORTFOLIO)

    def metrics(self) -> None:
        """Report that the replay ended and the equity, trades and metrics are being built."""
        self._emit(PORTFOLIO_END, Stage.METRICS)

    def done(self) -> None:
        """Report the end of the run."""
        self._emit(1.0, Stage.DONE)

    def _emit(self, fraction: float, stage: Stage) -> None:
        if self._callback is None:
            return
        if fraction - self._last >= MIN_STEP or fraction >= 1.0 > self._last or stage != self._stage:
            self._last, self._stage = max(self._last, fraction), stage
            self._callback(self._last, stage.value)
