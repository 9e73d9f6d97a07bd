"""Ingest Binance kline archives (.zip or .csv, folders or globs) into the candle store.

Each file is verified (its ``.CHECKSUM`` when present: SHA-256 of the file in Binance's
``<hash>  <name>`` format, naming that file; required with ``require_checksum``) and parsed completely
before anything is written, so a bad checksum or a malformed row rejects that one file and leaves stored
data untouched. After a file is ingested the store holds its bars for its range (last ingest wins).
A ledger (``ingested_files``) records, per file digest, the fingerprint its bars give their range; a file
is skipped unread only while the stored range still has that fingerprint, so a re-ingest after another
file changed those bars writes them again. The writes themselves are idempotent.
"""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from backtest_core.errors import DataError
from backtest_core.io.data_files import csv_from_zip, read_binance_klines
from backtest_core.model.candles import Candles
from pydantic import BaseModel, ConfigDict
from pymongo.database import Database
from pymongo.write_concern import WriteConcern

from backtest_marketdata.candle_store import MongoCandleStore, candles_fingerprint
from backtest_marketdata.models import SymbolType, WriteReport
from backtest_marketdata.symbol_store import MongoSymbolStore

LEDGER_COLLECTION = "ingested_files"
ARCHIVE_SUFFIXES = (".zip", ".csv")
CHECKSUM_SUFFIX = ".CHECKSUM"

Status = Literal["added", "skipped", "rejected"]
ChecksumState = Literal["verified", "missing"]
SKIPPED_UNREAD = "already ingested (same bytes, stored bars unchanged since)"
RESTORED = "stored bars differed from this file's since it was ingested; its bars were written again"


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
    checksum: ChecksumState | None = None
    forced: bool = False


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

    @property
    def not_verified(self) -> list[FileOutcome]:
        """The files stored or skipped without a `.CHECKSUM` to verify them."""
        return [f for f in self.files if f.status != "rejected" and f.checksum == "missing"]

    @property
    def forced(self) -> list[FileOutcome]:
        """The files the ledger had that `force` re-read and compared bar by bar."""
        return [f for f in self.files if f.forced]


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


def verify_checksum(path: Path, data: bytes, *, required: bool = False) -> ChecksumState:
    """Check `data` against ``<path>.CHECKSUM``; return "missing" if there is none, raise `DataError` if
    it does not match, names another file, or is missing while `required`."""
    checksum_path = path.with_name(path.name + CHECKSUM_SUFFIX)
    if not checksum_path.exists():
        if required:
            raise DataError(
                f"{path}: expected a checksum file {checksum_path.name} beside it (checksums are required),"
                " found none"
            )
        return "missing"
    text = checksum_path.read_text(encoding="utf-8", errors="replace").strip()
    parts = text.split()
    if not parts or len(parts[0]) != 64:
        raise DataError(f"{checksum_path}: line 1: expected '<sha256 hex>  <file name>', was {text[:100]!r}")
    if len(parts) > 1 and (named := Path(parts[1].lstrip("*")).name) != path.name:
        raise DataError(f"{path}: {checksum_path.name} is for {named!r}, expected {path.name!r}")
    expected = parts[0].lower()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise DataError(
            f"{path}: checksum mismatch: {checksum_path.name} says {expected}, file hashes to {actual}"
        )
    return "verified"


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
        require_checksum: bool = False,
        on_file: Callable[[FileOutcome], None] | None = None,
    ) -> IngestSummary:
        """Ingest every file; `force` re-reads files the ledger would skip, `require_checksum` rejects files
        without a `.CHECKSUM`. Never raises for one file."""
        outcomes: list[FileOutcome] = []
        touched: dict[tuple[str, str], SymbolType] = {}
        files = list(paths)

        def prepare(path: Path) -> FileOutcome | _Prepared:
            return self._prepare(path, symbol, interval, force, require_checksum)

        # Read, verify and parse the next file in a thread while this one is written (pipelining).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-parse") as pool:
            upcoming: Future[FileOutcome | _Prepared] | None = None
            for index, path in enumerate(files):
                current = upcoming or pool.submit(prepare, path)
                nxt = files[index + 1] if index + 1 < len(files) else None
                upcoming = None if nxt is None else pool.submit(prepare, nxt)
                prepared = current.result()
                outcome = prepared if isinstance(prepared, FileOutcome) else self._store(prepared)
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
        self, path: Path, symbol: str | None, interval: str | None, force: bool, require_checksum: bool
    ) -> FileOutcome | _Prepared:
        """Read and verify one file; parse it unless the ledger may let it be skipped (or reject it)."""
        try:
            data = path.read_bytes()
        except OSError as error:
            return FileOutcome(path=str(path), status="rejected", message=f"{path}: cannot read: {error}")
        digest = hashlib.sha256(data).hexdigest()
        parse = _Parse(path, data, symbol, interval)
        try:
            checksum = verify_checksum(path, data, required=require_checksum)
            done = self._ledger.find_one({"_id": digest})
            if done is not None and not force and done.get("fingerprint"):
                return _Prepared(path, digest, checksum, parse, done, None, forced=False)
            return _Prepared(path, digest, checksum, parse, done, parse(), forced=force and done is not None)
        except DataError as error:
            return FileOutcome(path=str(path), status="rejected", message=str(error))

    def _store(self, prepared: _Prepared) -> FileOutcome:
        """Skip a file whose stored bars are unchanged since it was ingested; else write it and record it."""
        done = prepared.done
        if prepared.candles is None and done is not None and self._unchanged_since(done):
            rows = int(done.get("rows", 0))
            return prepared.outcome(
                "skipped", symbol=done.get("symbol"), interval=done.get("interval"), rows=rows,
                unchanged=rows, message=SKIPPED_UNREAD,
            )  # fmt: skip
        try:
            candles = prepared.candles if prepared.candles is not None else prepared.parse()
        except DataError as error:
            return prepared.outcome("rejected", message=str(error))
        report: WriteReport = self.candles.write(candles)
        self._record(prepared.path, prepared.digest, candles)
        changed = report.added + report.replaced > 0
        message = "" if changed else "every bar already stored"
        if changed and done is not None and not prepared.forced:
            message = RESTORED
        return prepared.outcome(
            "added" if changed else "skipped",
            symbol=candles.symbol,
            interval=candles.interval,
            rows=len(candles),
            added=report.added,
            replaced=report.replaced,
            unchanged=report.unchanged,
            message=message,
        )

    def _unchanged_since(self, done: dict[str, Any]) -> bool:
        """Return True if the stored bars of a ledger entry's range still have the fingerprint it recorded."""
        stored = self.candles.fingerprint(done["symbol"], done["interval"], done["start_ns"], done["end_ns"])
        return bool(stored == done["fingerprint"])

    def _record(self, path: Path, digest: str, candles: Candles) -> None:
        """Record in the ledger the file's digest and the fingerprint its bars give their range."""
        entry: dict[str, Any] = {
            "_id": digest,
            "name": path.name,
            "symbol": candles.symbol,
            "interval": candles.interval,
            "rows": len(candles),
            "ingested_at": datetime.now(UTC),
        }
        if len(candles):
            start_ns, end_ns, fingerprint = candles_fingerprint(candles)
            entry |= {"start_ns": start_ns, "end_ns": end_ns, "fingerprint": fingerprint}
        self._ledger.replace_one({"_id": digest}, entry, upsert=True)


@dataclass(frozen=True)
class _Parse:
    """Parses one file's bytes into candles (a zip's single CSV, or the CSV itself)."""

    path: Path
    data: bytes
    symbol: str | None
    interval: str | None

    def __call__(self) -> Candles:
        """Return the file's candles; raise `DataError` naming the file and line if it is malformed."""
        zipped = self.path.suffix.lower() == ".zip"
        body, name = csv_from_zip(self.data, str(self.path)) if zipped else (self.data, str(self.path))
        return read_binance_klines(body, symbol=self.symbol, interval=self.interval, name=name)


@dataclass(frozen=True)
class _Prepared:
    """A read and verified file: its ledger entry if it has one, its candles unless it may be skipped."""

    path: Path
    digest: str
    checksum: ChecksumState
    parse: _Parse
    done: dict[str, Any] | None
    candles: Candles | None
    forced: bool

    def outcome(self, status: Status, **fields: Any) -> FileOutcome:
        """Return this file's outcome with `status` and the given counts and message."""
        return FileOutcome(
            path=str(self.path), status=status, checksum=self.checksum, forced=self.forced, **fields
        )
