"""`TradeLog`: a backtest's closed trades kept as columns, read as a sequence of `Trade` models.

A backtest can close hundreds of thousands of trades; making a Python object for each costs more than the
whole backtest. The engine therefore returns them as a `TradeTable` of numpy columns, and `TradeLog`
turns rows into frozen `Trade` models only when they are read: one row for `log[i]`, the rows of a slice
for `log[a:b]`, all of them (once, then kept) when it is iterated or serialised. To pydantic and to JSON it
is exactly a `list[Trade]`: it validates from one and serialises as one, so the API's shape is unchanged.
A log validated from a list keeps those models and makes its columns only if they are asked for.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, get_args, overload

import numpy as np
from pydantic import GetCoreSchemaHandler, SerializationInfo
from pydantic_core import CoreSchema, core_schema

from backtest_core.model.trade import ExitReason, Trade
from backtest_core.model.trade_pack import pack, unpack
from backtest_core.model.trade_rows import TradeTable, build_trades

if TYPE_CHECKING:  # pandas only for to_frame(): the sandbox entry never imports it
    import pandas as pd

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_REASONS: tuple[str, ...] = get_args(ExitReason)


class TradeLog(Sequence[Trade]):
    """Every closed trade of a backtest in closing order: a read-only sequence of `Trade`.

    Supports len, indexing (negative too), slicing (a `TradeLog`), iteration and == with another log or
    a list of trades; `to_frame()` gives the columns as a pandas DataFrame without making models.
    """

    __slots__ = ("_models", "_table")

    def __init__(self, table: TradeTable) -> None:
        self._table: TradeTable | None = table
        self._models: list[Trade] | None = None

    @classmethod
    def from_trades(cls, trades: Iterable[Trade]) -> TradeLog:
        """Return the log of these trades (kept as given: iterating yields the very same objects)."""
        log = cls.__new__(cls)
        log._table = None
        log._models = list(trades)
        return log

    @property
    def table(self) -> TradeTable:
        """The columns (read-only by convention: the log never copies them)."""
        if self._table is None:
            self._table = _columns(self._all())
        return self._table

    def __len__(self) -> int:
        return len(self.table) if self._models is None else len(self._models)

    @overload
    def __getitem__(self, index: int) -> Trade: ...

    @overload
    def __getitem__(self, index: slice) -> TradeLog: ...

    def __getitem__(self, index: int | slice) -> Trade | TradeLog:
        if isinstance(index, slice):
            if self._models is not None:
                return TradeLog.from_trades(self._models[index])
            return TradeLog(self.table.take(index))
        i = operator.index(index)
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"trade index {i} is out of range for {n} trades")
        i %= n
        if self._models is not None:
            return self._models[i]
        return build_trades(self.table.take(slice(i, i + 1)))[0]

    def __iter__(self) -> Iterator[Trade]:
        return iter(self._all())

    def to_list(self) -> list[Trade]:
        """Return the trades as a new list of models."""
        return list(self._all())

    def _all(self) -> list[Trade]:
        if self._models is None:
            self._models = build_trades(self.table)
        return self._models

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TradeLog | list | tuple):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # equal to lists, which are unhashable

    def __repr__(self) -> str:
        return f"TradeLog({len(self)} trades)"

    def to_frame(self) -> pd.DataFrame:
        """Return one row per trade, columns named as `Trade`'s fields; times as UTC datetime64[ns]."""
        import pandas as pd

        t = self.table

        def utc(ns: np.ndarray) -> pd.DatetimeIndex:
            return pd.DatetimeIndex(ns.astype("datetime64[ns]"), tz="UTC")

        return pd.DataFrame(
            {
                "symbol": np.array(t.symbols, dtype=object)[t.symbol],
                "side": np.where(t.long, "long", "short").astype(object),
                "units": t.units,
                "entry_time": utc(t.entry_ns),
                "entry_price": t.entry_price,
                "exit_time": utc(t.exit_ns),
                "exit_price": t.exit_price,
                "exit_reason": np.array(t.reasons, dtype=object)[t.reason],
                "pnl": t.pnl,
                "return_pct": t.return_pct,
                "fees": t.fees,
                "bars_held": t.bars_held,
            },
            columns=list(Trade.model_fields),
        )

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        """Validate from `list[Trade]` or a packed string (a `TradeLog` passes as is); serialise as
        `list[Trade]`, or as the packed string under the context `PACKED` (between services)."""
        as_list = handler.generate_schema(list[Trade])

        def validate(value: Any, inner: Callable[[Any], list[Trade]]) -> TradeLog:
            if isinstance(value, cls):
                return value
            if isinstance(value, str):  # packed (or a string that says why it is not)
                return cls(unpack(value))
            return cls.from_trades(inner(value))

        def serialise(value: Sequence[Trade], info: SerializationInfo) -> str | list[Trade]:
            # model_copy(update=...) may have put a plain list here
            log = value if isinstance(value, TradeLog) else cls.from_trades(value)
            if isinstance(info.context, Mapping) and info.context.get(_CONTEXT_KEY) == _PACKED:
                return pack(log.table)
            return log._all()

        schema = core_schema.no_info_wrap_validator_function(
            validate,
            as_list,
            serialization=core_schema.plain_serializer_function_ser_schema(
                serialise, info_arg=True, return_schema=core_schema.any_schema()
            ),
        )
        schema["metadata"] = {"pydantic_js_functions": [lambda _, json_handler: json_handler(as_list)]}
        return schema


_CONTEXT_KEY, _PACKED = "trades", "packed"
PACKED: dict[str, str] = {_CONTEXT_KEY: _PACKED}
"""Serialisation context that packs every `TradeLog` into one string (`trade_pack`): pass it as
`model_dump_json(context=PACKED)` to whatever carries a result between services; readers validate either
form back into a `TradeLog`."""


def _columns(models: Sequence[Trade]) -> TradeTable:
    """Return the columns of these models (symbols coded in order of first appearance)."""
    symbols = tuple(dict.fromkeys(t.symbol for t in models))
    code = {s: i for i, s in enumerate(symbols)}
    return TradeTable(
        symbols=symbols,
        reasons=_REASONS,
        symbol=np.array([code[t.symbol] for t in models], np.int64),
        long=np.array([t.side == "long" for t in models], bool),
        reason=np.array([_REASONS.index(t.exit_reason) for t in models], np.int64),
        entry_ns=np.array([_epoch_ns(t.entry_time) for t in models], np.int64),
        exit_ns=np.array([_epoch_ns(t.exit_time) for t in models], np.int64),
        units=_floats(models, "units"),
        entry_price=_floats(models, "entry_price"),
        exit_price=_floats(models, "exit_price"),
        pnl=_floats(models, "pnl"),
        return_pct=_floats(models, "return_pct"),
        fees=_floats(models, "fees"),
        bars_held=np.array([t.bars_held for t in models], np.int64),
    )


def _epoch_ns(t: datetime) -> int:
    """Return a datetime as epoch nanoseconds (naive means UTC)."""
    aware = t if t.tzinfo is not None else t.replace(tzinfo=UTC)
    return ((aware - _EPOCH) // _US) * 1000


def _floats(models: Sequence[Trade], name: str) -> np.ndarray:
    return np.array([getattr(t, name) for t in models], np.float64)
