"""Ingest Binance kline archives (.zip or .csv, folders or globs) into the candle store.

Each file is verified (its ``.CHECKSUM`` when present: SHA-256 of the file in Binance's
``<hash>  <name>`` format) and parsed completely before anything is written, so a bad checksum or a
malformed row rejects that one file and leaves stored data untouched. Files whose exact bytes were
ingested before are skipped from a ledger (``ingested_files``), which makes an interrupted run
resumable; the writes themselves are idempotent anyway.
"""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from backtest_core.candles import Candles
from backtest_core.data_files import csv_from_zip, read_binance_klines
from backtest_core.errors import DataError
from pydantic import BaseModel, ConfigDict
from pymongo.database import Database
from pymongo.write_concern import WriteConcern

from backtest_marketdata.candle_store import MongoCandleStore
from backtest_marketdata.models import SymbolType, WriteReport
from backtest_marketdata.symbol_store import MongoSymbolStore

LEDGER_COLLECTION = "ingested_files"
ARCHIVE_SUFFIXES = (".zip", ".csv")
CHECKSUM_SUFFIX = ".CHECKSUM"

Status = Literal["added", "skipped", "rejected"]


class FileOutcome(BaseModel):
    """What happened to one file: added (stored something new), skipped (nothing new), rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    status: Status
    symbol: str | None = None
    interval: str | None = None
    rows: int = 0
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    message: str = ""


class IngestSummary(BaseModel):
    """Totals over every file of one ingestion run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    files: list[FileOutcome]

    def count(self, status: Status) -> int:
        """Return the number of files with `status`."""
        return sum(1 for f in self.files if f.status == status)

    @property
    def candles_added(self) -> int:
        """Bars stored that were not stored before."""
        return sum(f.added for f in self.files)

    @property
    def candles_replaced(self) -> int:
        """Stored bars whose values the files changed."""
        return sum(f.replaced for f in self.files)

    @property
    def rejected(self) -> list[FileOutcome]:
        """The rejected files with their messages."""
        return [f for f in self.files if f.status == "rejected"]


def discover(specs: Sequence[str]) -> list[Path]:
    """Expand files, folders (searched recursively) and globs into .zip/.csv files, each once, sorted.

    A spec that matches nothing is a `DataError`.
    """
    found: dict[Path, None] = {}
    for spec in specs:
        path = Path(spec)
        if any(ch in spec for ch in "*?["):
            matches = [Path(m) for m in glob.glob(spec, recursive=True)]
        elif path.is_dir():
            matches = list(path.rglob("*"))
        elif path.is_file():
            matches = [path]
        else:
            raise DataError(f"{spec!r}: expected a file, folder or glob, found nothing there")
        files = [m for m in matches if m.is_file() and m.suffix.lower() in ARCHIVE_SUFFIXES]
        if not files:
            raise DataError(f"{spec!r}: expected .zip or .csv files, matched none")
        for file in sorted(files):
            found.setdefault(file, None)
    return list(found)


def verify_checksum(path: Path, data: bytes) -> None:
    """Check `data` against ``<path>.CHECKSUM`` if that file exists; raise `DataError` on mismatch."""
    checksum_path = path.with_name(path.name + CHECKSUM_SUFFIX)
    if not checksum_path.exists():
        return
    text = checksum_path.read_text(encoding="utf-8", errors="replace").strip()
    parts = text.split()
    if not parts or len(parts[0]) != 64:
        raise DataError(f"{checksum_path}: line 1: expected '<sha256 hex>  <file name>', was {text[:100]!r}")
    expected = parts[0].lower()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise DataError(
            f"{path}: checksum mismatch: {checksum_path.name} says {expected}, file hashes to {actual}"
        )


def symbol_type_of(path: Path) -> SymbolType:
    """Return "futures" for files under a Binance ``futures`` folder, else "spot"."""
    return "futures" if "futures" in {part.lower() for part in path.parts} else "spot"


class Ingestor:
    """Ingests files into a candle store, keeps symbol coverage current and a ledger of done files."""

    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self.candles = MongoCandleStore(db)
        self.symbols = MongoSymbolStore(db)
        self._ledger = db[LEDGER_COLLECTION].with_options(write_concern=WriteConcern("majority"))

    def ensure_indexes(self) -> None:
        """Create the stores' indexes."""
        self.candles.ensure_indexes()
        self.symbols.ensure_indexes()

    def ingest(
        self,
        paths: Iterable[Path],
        *,
        symbol: str | None = None,
        interval: str | None = None,
        force: bool = False,
        on_file: Callable[[FileOutcome], None] | None = None,
    ) -> IngestSummary:
        """Ingest every file; `force` re-reads files the ledger says are done. Never raises for one file."""
        outcomes: list[FileOutcome] = []
        touched: dict[tuple[str, str], SymbolType] = {}
        files = list(paths)
        # Read, verify and parse the next file in a thread while this one is written (pipelining).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-parse") as pool:
            upcoming: Future[FileOutcome | tuple[str, Candles]] | None = None
            for index, path in enumerate(files):
                current = upcoming or pool.submit(self._prepare, path, symbol, interval, force)
                nxt = files[index + 1] if index + 1 < len(files) else None
                upcoming = None if nxt is None else pool.submit(self._prepare, nxt, symbol, interval, force)
                outcome = self._store(path, current.result())
                if outcome.status == "added" and outcome.symbol and outcome.interval:
                    touched[(outcome.symbol, outcome.interval)] = symbol_type_of(path)
                outcomes.append(outcome)
                if on_file is not None:
                    on_file(outcome)
        for (name, code), type_ in touched.items():
            self.symbols.ensure(name, type_)
            self.symbols.set_coverage(self.candles.coverage(name, code))
        return IngestSummary(files=outcomes)

    def _prepare(
        self, path: Path, symbol: str | None, interval: str | None, force: bool
    ) -> FileOutcome | tuple[str, Candles]:
        """Return (file digest, parsed candles), or the outcome if the file is skipped or rejected."""
        try:
            data = path.read_bytes()
        except OSError as error:
            return FileOutcome(path=str(path), status="rejected", message=f"{path}: cannot read: {error}")
        digest = hashlib.sha256(data).hexdigest()
        if not force and (done := self._ledger.find_one({"_id": digest})) is not None:
            return FileOutcome(
                path=str(path),
                status="skipped",
                symbol=done.get("symbol"),
                interval=done.get("interval"),
                rows=int(done.get("rows", 0)),
                unchanged=int(done.get("rows", 0)),
                message="already ingested (same bytes)",
            )
        try:
            verify_checksum(path, data)
            body, name = csv_from_zip(data, str(path)) if path.suffix.lower() == ".zip" else (data, str(path))
            candles = read_binance_klines(body, symbol=symbol, interval=interval, name=name)
        except DataError as error:
            return FileOutcome(path=str(path), status="rejected", message=str(error))
        return digest, candles

    def _store(self, path: Path, prepared: FileOutcome | tuple[str, Candles]) -> FileOutcome:
        """Write parsed candles and record the file in the ledger."""
        if isinstance(prepared, FileOutcome):
            return prepared
        digest, candles = prepared
        report: WriteReport = self.candles.write(candles)
        self._ledger.replace_one(
            {"_id": digest},
            {
                "_id": digest,
                "name": path.name,
                "symbol": candles.symbol,
                "interval": candles.interval,
                "rows": len(candles),
                "ingested_at": datetime.now(UTC),
            },
            upsert=True,
        )
        changed = report.added + report.replaced > 0
        return FileOutcome(
            path=str(path),
            status="added" if changed else "skipped",
            symbol=candles.symbol,
            interval=candles.interval,
            rows=len(candles),
            added=report.added,
            replaced=report.replaced,
            unchanged=report.unchanged,
            message="" if changed else "every bar already stored",
        )
