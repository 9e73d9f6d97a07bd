"""Find and read the candle files of `backtest run --data`: files, folders, globs; one symbol per file."""

from __future__ import annotations

import glob
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from backtest_core.errors import DataError
from backtest_core.io.data_files import MissingNameError, read_candle_file
from backtest_core.model.candles import COLUMNS, Candles

SUFFIXES = (".csv", ".zip")


@dataclass(frozen=True, slots=True)
class LoadedSymbol:
    """One symbol's bars concatenated from `files` (in time order)."""

    candles: Candles
    files: tuple[Path, ...]


def resolve_paths(specs: Sequence[str]) -> list[Path]:
    """Expand each `--data` value (file, folder searched recursively for .csv/.zip, or glob) into files.

    Each file appears once, in the order first named; a value that matches nothing is a `DataError`.
    """
    found: dict[Path, None] = {}
    for spec in specs:
        path = Path(spec)
        if any(ch in spec for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(spec, recursive=True) if Path(m).is_file())
            if not matches:
                raise DataError(f"--data {spec!r}: the pattern matches no file")
        elif path.is_dir():
            matches = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
            if not matches:
                raise DataError(f"--data {spec!r}: the folder holds no .csv or .zip file")
        elif path.is_file():
            matches = [path]
        else:
            raise DataError(f"--data {spec!r}: no such file or folder")
        for match in matches:
            found.setdefault(match.resolve(), None)
    return list(found)


def load_symbols(
    paths: Sequence[Path], *, symbol: str | None, interval: str | None
) -> dict[str, LoadedSymbol]:
    """Read every file and concatenate the files of each symbol in time order.

    `symbol` overrides the symbol of every file (then all files are one symbol); `interval` overrides
    the one in the file names. All symbols must share one interval; files of a symbol must not overlap.
    """
    parts: dict[str, list[tuple[Candles, Path]]] = {}
    for path in paths:
        try:
            candles = read_candle_file(path, symbol=symbol, interval=interval)
        except MissingNameError as error:
            raise DataError(f"{error} with --{error.what}") from None
        if len(candles) == 0:
            raise DataError(f"{path}: the file holds no candles")
        parts.setdefault(candles.symbol, []).append((candles, path))
    intervals = {c.interval: p for pieces in parts.values() for c, p in pieces}
    if len(intervals) > 1:
        named = ", ".join(f"{i} ({p.name})" for i, p in intervals.items())
        raise DataError(f"all --data files must have one interval, found {named}; pass --interval")
    return {name: _concatenate(pieces) for name, pieces in parts.items()}


def _concatenate(pieces: list[tuple[Candles, Path]]) -> LoadedSymbol:
    """Join one symbol's files sorted by their first bar, refusing files whose bars overlap."""
    pieces = sorted(pieces, key=lambda piece: int(piece[0].open_time[0]))
    for (before, before_path), (after, after_path) in itertools.pairwise(pieces):
        if int(after.open_time[0]) <= int(before.open_time[-1]):
            raise DataError(
                f"{after_path} overlaps {before_path}: its first bar must be after the other's last bar "
                f"({np.datetime64(int(before.open_time[-1]), 'ns')}), was "
                f"{np.datetime64(int(after.open_time[0]), 'ns')}"
            )
    first = pieces[0][0]
    if len(pieces) == 1:
        return LoadedSymbol(candles=first, files=(pieces[0][1],))
    joined = Candles(
        symbol=first.symbol,
        interval=first.interval,
        open_time=np.concatenate([c.open_time for c, _ in pieces]),
        **{name: np.concatenate([getattr(c, name) for c, _ in pieces]) for name in COLUMNS},
    )
    return LoadedSymbol(candles=joined, files=tuple(p for _, p in pieces))
