"""`MongoSymbolStore`: the symbols collection (seed 000's SYMBOLS) with data coverage per interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from backtest_core.errors import DataError
from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.write_concern import WriteConcern

from backtest_marketdata.models import (
    Coverage,
    IntervalCoverage,
    SortField,
    Symbol,
    SymbolFilter,
    SymbolPage,
    SymbolType,
)

SYMBOLS_COLLECTION = "symbols"
MAX_PAGE = 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INDEXED = ("type", "is_active", "volume_24h", "market_cap", "last_updated")


class MongoSymbolStore:
    """Symbols keyed by their name (`_id` = symbol); lists, filters, and coverage kept per interval."""

    def __init__(self, db: Database[dict[str, Any]], collection: str = SYMBOLS_COLLECTION) -> None:
        self._read: Collection[dict[str, Any]] = db[collection]
        self._write = self._read.with_options(write_concern=WriteConcern("majority"))

    def ensure_indexes(self) -> None:
        """Create the indexes used by list and filter (needs a writing user)."""
        for field in _INDEXED:
            self._write.create_index([(field, ASCENDING)], name=field)

    def upsert(self, symbol: Symbol) -> None:
        """Insert or replace a symbol's descriptive fields, keeping its stored coverage."""
        fields = symbol.model_dump(exclude={"coverage"})
        update: dict[str, Any] = {"$set": fields}
        if symbol.coverage:
            update["$set"] |= {f"coverage.{k}": v.model_dump() for k, v in symbol.coverage.items()}
        self._write.update_one({"_id": symbol.symbol}, update, upsert=True)

    def ensure(self, symbol: str, type_: SymbolType = "spot") -> None:
        """Create a minimal symbol record if the symbol is unknown (ingestion of a new symbol)."""
        now = datetime.now(UTC)
        record = Symbol(symbol=symbol, name=symbol, type=type_, last_updated=now)
        self._write.update_one(
            {"_id": symbol}, {"$setOnInsert": record.model_dump(exclude={"coverage"})}, upsert=True
        )

    def set_coverage(self, coverage: Coverage) -> None:
        """Store one interval's coverage on the symbol (created if unknown)."""
        self.ensure(coverage.symbol)
        value = IntervalCoverage(
            first=_datetime(coverage.first_ns),
            last=_datetime(coverage.last_ns),
            count=coverage.count,
            gaps=coverage.gaps,
            missing=coverage.missing,
        )
        self._write.update_one(
            {"_id": coverage.symbol}, {"$set": {f"coverage.{coverage.interval}": value.model_dump()}}
        )

    def get(self, symbol: str) -> Symbol | None:
        """Return one symbol, or None."""
        document = self._read.find_one({"_id": symbol})
        return None if document is None else _symbol(document)

    def list(
        self, *, offset: int = 0, limit: int = 100, sort: SortField = "symbol", descending: bool = False
    ) -> SymbolPage:
        """Return a page of all symbols sorted by `sort` (ties broken by symbol)."""
        return self.filter(SymbolFilter(), offset=offset, limit=limit, sort=sort, descending=descending)

    def filter(
        self,
        criteria: SymbolFilter,
        *,
        offset: int = 0,
        limit: int = 100,
        sort: SortField = "symbol",
        descending: bool = False,
    ) -> SymbolPage:
        """Return a page of the symbols matching every criterion."""
        if offset < 0 or not 1 <= limit <= MAX_PAGE:
            raise DataError(
                f"offset must be >= 0 and 1 <= limit <= {MAX_PAGE}, was offset={offset}, limit={limit}"
            )
        query = _query(criteria)
        direction = DESCENDING if descending else ASCENDING
        order = [(sort, direction)] + ([("_id", ASCENDING)] if sort != "symbol" else [])
        total = self._read.count_documents(query)
        cursor = self._read.find(query).sort(order).skip(offset).limit(limit)
        return SymbolPage(total=total, offset=offset, limit=limit, items=[_symbol(d) for d in cursor])


def _query(criteria: SymbolFilter) -> dict[str, Any]:
    query: dict[str, Any] = {}
    if criteria.type is not None:
        query["type"] = criteria.type
    if criteria.is_active is not None:
        query["is_active"] = criteria.is_active
    for field, low, high in (
        ("volume_24h", criteria.min_volume_24h, criteria.max_volume_24h),
        ("market_cap", criteria.min_market_cap, criteria.max_market_cap),
    ):
        bounds = {op: v for op, v in (("$gte", low), ("$lte", high)) if v is not None}
        if bounds:
            query[field] = bounds
    coverage_bounds = (criteria.covers_from, criteria.covers_to, criteria.max_gaps)
    if criteria.has_interval is None and any(v is not None for v in coverage_bounds):
        raise DataError("covers_from, covers_to and max_gaps need has_interval, was has_interval=None")
    if criteria.has_interval is not None:
        prefix = f"coverage.{criteria.has_interval}"
        query[f"{prefix}.count"] = {"$gt": 0}
        if criteria.covers_from is not None:
            query[f"{prefix}.first"] = {"$lte": criteria.covers_from}
        if criteria.covers_to is not None:
            query[f"{prefix}.last"] = {"$gte": criteria.covers_to}
        if criteria.max_gaps is not None:
            query[f"{prefix}.gaps"] = {"$lte": criteria.max_gaps}
    return query


def _symbol(document: dict[str, Any]) -> Symbol:
    fields = {k: _utc(v) for k, v in document.items() if k != "_id"}
    fields["coverage"] = {
        interval: {k: _utc(v) for k, v in cover.items()}
        for interval, cover in fields.get("coverage", {}).items()
    }
    return Symbol.model_validate(fields)


def _utc(value: Any) -> Any:
    """Mark naive datetimes (from a client without tz_aware=True) as the UTC they are."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _datetime(time_ns: int | None) -> datetime | None:
    if time_ns is None:
        return None
    return EPOCH + timedelta(microseconds=time_ns // 1000)
