"""Candles: one symbol's OHLCV bars as numpy arrays, and their on-disk exchange format."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from backtest_core.errors import DataError

if TYPE_CHECKING:  # pandas is imported only where a frame is made: the sandbox entry never needs it
    import pandas as pd

NS_PER_MS = 1_000_000

# Binance kline intervals and their length in nanoseconds ("1M" is a calendar month: 30.44 days average).
INTERVAL_NS: dict[str, int] = {
    "1s": 1_000_000_000,
    "1m": 60_000_000_000,
    "3m": 180_000_000_000,
    "5m": 300_000_000_000,
    "15m": 900_000_000_000,
    "30m": 1_800_000_000_000,
    "1h": 3_600_000_000_000,
    "2h": 7_200_000_000_000,
    "4h": 14_400_000_000_000,
    "6h": 21_600_000_000_000,
    "8h": 28_800_000_000_000,
    "12h": 43_200_000_000_000,
    "1d": 86_400_000_000_000,
    "3d": 259_200_000_000_000,
    "1w": 604_800_000_000_000,
    "1M": 2_629_746_000_000_000,
}

SYMBOL_PATTERN = re.compile(r"^[A-Z0-9]{2,30}$")
COLUMNS = ("open", "high", "low", "close", "volume")


def interval_ns(interval: str) -> int:
    """Return the length of a Binance interval code in nanoseconds."""
    try:
        return INTERVAL_NS[interval]
    except KeyError:
        raise DataError(f"interval must be one of {sorted(INTERVAL_NS)}, was {interval!r}") from None


@dataclass(frozen=True, slots=True, eq=False)
class Candles:
    """One symbol's bars: `open_time` in int64 UTC nanoseconds (strictly increasing), prices float64."""

    symbol: str
    interval: str
    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.open_time)
        for name in COLUMNS:
            if len(getattr(self, name)) != n:
                raise DataError(
                    f"{self.symbol}: column {name} has {len(getattr(self, name))} rows, expected {n}"
                )
        if n > 1 and not bool(np.all(np.diff(self.open_time) > 0)):
            raise DataError(f"{self.symbol}: open_time must be strictly increasing")

    def __len__(self) -> int:
        return len(self.open_time)

    def between(self, start_ns: int | None, end_ns: int | None) -> Candles:
        """Return the bars with start_ns <= open_time < end_ns (None means unbounded)."""
        lo = 0 if start_ns is None else int(np.searchsorted(self.open_time, start_ns, side="left"))
        hi = len(self) if end_ns is None else int(np.searchsorted(self.open_time, end_ns, side="left"))
        return self._take(slice(lo, hi))

    def _take(self, index: slice) -> Candles:
        return Candles(
            symbol=self.symbol,
            interval=self.interval,
            open_time=self.open_time[index],
            open=self.open[index],
            high=self.high[index],
            low=self.low[index],
            close=self.close[index],
            volume=self.volume[index],
        )

    def to_frame(self) -> pd.DataFrame:
        """Return a DataFrame indexed by UTC open time with columns open, high, low, close, volume."""
        import pandas as pd

        index = pd.DatetimeIndex(pd.to_datetime(self.open_time, unit="ns", utc=True), name="open_time")
        return pd.DataFrame({name: getattr(self, name) for name in COLUMNS}, index=index)

    @classmethod
    def from_frame(cls, symbol: str, interval: str, frame: pd.DataFrame) -> Candles:
        """Build candles from a DataFrame with a DatetimeIndex and open/high/low/close/volume columns."""
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise DataError(f"{symbol}: missing columns {missing}")
        import pandas as pd

        index = pd.DatetimeIndex(frame.index)
        if index.tz is None:
            index = index.tz_localize("UTC")
        open_time = index.tz_convert("UTC").as_unit("ns").asi8.astype(np.int64)
        return cls(
            symbol=symbol,
            interval=interval,
            open_time=np.ascontiguousarray(open_time),
            **{c: np.ascontiguousarray(frame[c].to_numpy(dtype=np.float64)) for c in COLUMNS},
        )


def write_candles(path: Path, candles: Candles) -> None:
    """Write candles to an uncompressed .npz file (the runner -> sandbox exchange format)."""
    np.savez(
        path,
        symbol=np.array(candles.symbol),
        interval=np.array(candles.interval),
        open_time=candles.open_time,
        **{c: getattr(candles, c) for c in COLUMNS},
    )


def read_candles(path: Path) -> Candles:
    """Read candles written by `write_candles`."""
    with np.load(path, allow_pickle=False) as data:
        return Candles(
            symbol=str(data["symbol"]),
            interval=str(data["interval"]),
            open_time=data["open_time"].astype(np.int64, copy=False),
            **{c: data[c].astype(np.float64, copy=False) for c in COLUMNS},
        )
