"""The strategy plugin model: BaseStrategy, the Signal it returns, and the per-bar Window it sees."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np

from backtest_core.errors import ConfigError
from backtest_core.model.candles import Candles
from backtest_core.model.config import ParamValue

if TYPE_CHECKING:  # pandas only for to_pandas(): the sandbox entry never imports it otherwise
    import pandas as pd


class Side(StrEnum):
    """What a strategy wants on this bar: open/close long (BUY), close long or open short (SELL), nothing."""

    BUY = "BUY"
    SELL = "SELL"
    NO = "NO"


class Signal(NamedTuple):
    """One bar's decision. Prices are absolute, in quote currency; None means "not set".

    `entry_price` None = a market order at the fill (next open or this close, per config.fill);
    a price = a limit order valid on the next bar only. `take_profit` / `stop_loss` apply to the
    position this signal opens. `confidence` in [0, 1] is informational; `meta` is not carried further.
    """

    side: Side
    entry_price: float | None = None
    take_profit: float | None = None
    stop_loss: float | None = None
    confidence: float = 1.0
    meta: Mapping[str, Any] | None = None


NO_SIGNAL = Signal(Side.NO)

SIDE_CODE = {Side.BUY: 1, Side.SELL: -1, Side.NO: 0}


@dataclass(frozen=True, slots=True)
class SignalArrays:
    """Signals for a whole series at once (the vectorized path). All arrays have one entry per bar.

    `side`: int8, +1 BUY, -1 SELL, 0 NO. `entry_price`, `take_profit`, `stop_loss`: float64, NaN = not set.
    `confidence`: float64.
    """

    side: np.ndarray
    entry_price: np.ndarray
    take_profit: np.ndarray
    stop_loss: np.ndarray
    confidence: np.ndarray

    @classmethod
    def empty(cls, n: int) -> SignalArrays:
        """Return n bars of NO signals."""
        nan = np.full(n, np.nan)
        return cls(np.zeros(n, np.int8), nan, nan.copy(), nan.copy(), np.ones(n))

    @classmethod
    def market(cls, side: np.ndarray) -> SignalArrays:
        """Return market-entry signals without limit, take-profit or stop-loss prices.

        The price and confidence arrays are read-only broadcast views of one NaN / one 1.0 (no
        per-bar memory); `side` is used as given (int8 expected) and stays writable.
        """
        n = len(side)
        nan = np.broadcast_to(np.float64(np.nan), (n,))
        return cls(side, nan, nan, nan, np.broadcast_to(np.float64(1.0), (n,)))

    @classmethod
    def from_sides(
        cls,
        side: np.ndarray,
        take_profit: np.ndarray | None = None,
        stop_loss: np.ndarray | None = None,
    ) -> SignalArrays:
        """Build market-entry signals from a side array and optional TP/SL price arrays (NaN = none)."""
        out = cls.empty(len(side))
        out.side[:] = side
        if take_profit is not None:
            out.take_profit[:] = np.where(side != 0, take_profit, np.nan)
        if stop_loss is not None:
            out.stop_loss[:] = np.where(side != 0, stop_loss, np.nan)
        return out


class Window:
    """The bars a strategy sees at bar t: the last `get_required_lookback()` bars, ending at t inclusive.

    Behaves enough like a DataFrame for strategy code: `w["close"]` and `w.close` are float64 numpy
    arrays (oldest first, `w.close[-1]` is bar t's close), likewise open, high, low, volume and
    `open_time` (int64 UTC nanoseconds); `len(w)` is the number of bars; `w.to_pandas()` builds a real
    DataFrame (slow: only when you need pandas). It never contains a bar after t (no look-ahead).
    The arrays are read-only views, valid during the decide() call only.
    """

    __slots__ = ("_cols", "_start", "_stop")

    def __init__(self, candles: Candles, start: int = 0, stop: int | None = None) -> None:
        cols = {}
        for name in ("open_time", "open", "high", "low", "close", "volume"):
            arr = getattr(candles, name).view()
            arr.flags.writeable = False
            cols[name] = arr
        self._cols: dict[str, np.ndarray] = cols
        self._start = start
        self._stop = len(candles) if stop is None else stop

    def _move(self, start: int, stop: int) -> None:
        self._start = start
        self._stop = stop

    def __getitem__(self, column: str) -> np.ndarray:
        try:
            return self._cols[column][self._start : self._stop]
        except KeyError:
            raise KeyError(f"column must be one of {sorted(self._cols)}, was {column!r}") from None

    def __len__(self) -> int:
        return self._stop - self._start

    @property
    def open(self) -> np.ndarray:
        """Opens, oldest first."""
        return self._cols["open"][self._start : self._stop]

    @property
    def high(self) -> np.ndarray:
        """Highs, oldest first."""
        return self._cols["high"][self._start : self._stop]

    @property
    def low(self) -> np.ndarray:
        """Lows, oldest first."""
        return self._cols["low"][self._start : self._stop]

    @property
    def close(self) -> np.ndarray:
        """Closes, oldest first; `close[-1]` is the current bar's."""
        return self._cols["close"][self._start : self._stop]

    @property
    def volume(self) -> np.ndarray:
        """Volumes (base asset), oldest first."""
        return self._cols["volume"][self._start : self._stop]

    @property
    def open_time(self) -> np.ndarray:
        """Bar open times, int64 UTC nanoseconds."""
        return self._cols["open_time"][self._start : self._stop]

    @property
    def columns(self) -> list[str]:
        """Column names, as on a DataFrame."""
        return ["open", "high", "low", "close", "volume"]

    def to_pandas(self) -> pd.DataFrame:
        """Return the window as a DataFrame indexed by UTC open time."""
        import pandas as pd

        index = pd.DatetimeIndex(pd.to_datetime(self.open_time, unit="ns", utc=True), name="open_time")
        return pd.DataFrame({c: self[c].copy() for c in self.columns}, index=index)


@dataclass(frozen=True, slots=True)
class Param:
    """A declared strategy parameter: default, type, inclusive bounds, and what it means (with units)."""

    default: ParamValue
    doc: str
    minimum: float | None = None
    maximum: float | None = None

    def coerce(self, name: str, value: object) -> ParamValue:
        """Return value converted to the default's type, or raise ConfigError saying what was expected."""
        kind = type(self.default)
        if kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"param {name} must be true or false, was {value!r}")
            return value
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
                raise ConfigError(f"param {name} must be an integer, was {value!r}")
            out: int | float = int(value)
        elif kind is float:
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                raise ConfigError(f"param {name} must be a number, was {value!r}")
            out = float(value)
        else:
            if not isinstance(value, str):
                raise ConfigError(f"param {name} must be a string, was {value!r}")
            return value
        if self.minimum is not None and out < self.minimum:
            raise ConfigError(f"param {name} must be >= {self.minimum}, was {value!r}")
        if self.maximum is not None and out > self.maximum:
            raise ConfigError(f"param {name} must be <= {self.maximum}, was {value!r}")
        return out


class BaseStrategy:
    """Subclass this to write a strategy: declare `params`, implement `decide`, optionally more.

    - `params`: `{name: Param(default, doc, minimum, maximum)}`. Config values are checked against it
      (unknown names and bad values raise ConfigError); `validate_params` checks combinations. Leave it
      None to accept any params unchecked.
    - `decide(df, interval, **params) -> Signal`: called once per bar t (from the first bar where
      `len(df) == get_required_lookback()`), `df` is a `Window` holding bars <= t only. A dict in the
      seed's format (`signal`, `entry_price`, `tp_price`, `sl_price`, `confidence`, `meta`) works too.
    - `decide_vectorized(candles, interval, **params) -> SignalArrays`: optional; signals for the whole
      series at once. It must equal calling decide() bar by bar, bit for bit (use the same arithmetic).
    - `get_required_lookback()`: bars decide() needs (default 1).
    - `work_units(symbols)`: how symbols are split into parallel units (default: one per symbol).
    """

    name: ClassVar[str] = ""
    params: ClassVar[Mapping[str, Param] | None] = None

    def __init__(self, **params: ParamValue) -> None:
        self.values: dict[str, ParamValue] = self._resolve(params)
        self.validate_params(**self.values)

    def _resolve(self, given: Mapping[str, ParamValue]) -> dict[str, ParamValue]:
        declared = type(self).params
        if declared is None:
            return dict(given)
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise ConfigError(
                f"{type(self).__name__} accepts params {sorted(declared)}, got unknown {unknown}"
            )
        return {k: p.coerce(k, given[k]) if k in given else p.default for k, p in declared.items()}

    def validate_params(self, **params: Any) -> None:
        """Raise ConfigError when a combination of params is invalid (default: accept)."""

    def get_required_lookback(self) -> int:
        """Return how many bars decide() needs in its window (>= 1)."""
        return 1

    def work_units(self, symbols: Sequence[str]) -> list[list[str]]:
        """Split symbols into units processed in parallel (default: one unit per symbol)."""
        return [[s] for s in symbols]

    def decide(self, df: Window, interval: str, **params: Any) -> Signal:
        """Return this bar's signal from the window `df` (bars up to and including t)."""
        raise NotImplementedError(f"{type(self).__name__} must implement decide()")

    def decide_vectorized(self, candles: Candles, interval: str, **params: Any) -> SignalArrays | None:
        """Return signals for every bar at once, or None when only decide() is implemented."""
        return None

    def has_vectorized(self) -> bool:
        """Return True when the class implements decide_vectorized."""
        return type(self).decide_vectorized is not BaseStrategy.decide_vectorized


def as_signal(value: object) -> Signal:
    """Normalise a decide() return value (Signal, Side, "BUY"/"SELL"/"NO", seed dict) to a Signal."""
    if isinstance(value, Signal):
        if isinstance(value.side, Side):
            return value
        return value._replace(side=Side(str(value.side).upper()))
    if isinstance(value, str):
        return Signal(Side(value.upper()))
    if isinstance(value, Mapping):
        raw = value.get("signal", value.get("side", "NO"))
        return Signal(
            side=Side(str(raw).upper()),
            entry_price=_opt_float(value.get("entry_price")),
            take_profit=_opt_float(value.get("tp_price", value.get("take_profit"))),
            stop_loss=_opt_float(value.get("sl_price", value.get("stop_loss"))),
            confidence=float(value.get("confidence", 1.0) or 0.0),
            meta=value.get("meta"),
        )
    if value is None:
        return NO_SIGNAL
    raise TypeError(
        f"decide() must return a Signal, a side string or a dict, returned {type(value).__name__}"
    )


def _opt_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
