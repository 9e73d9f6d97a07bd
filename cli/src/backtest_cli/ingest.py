"""`backtest ingest` (Binance kline archives into MongoDB) and `backtest fetch` (Binance REST into MongoDB).

Exit codes: 0 every file stored or skipped; 1 some files rejected (named with line on stderr);
2 bad input (no such path, bad option) or the database cannot be reached.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from typing import Any

from backtest_core.candles import INTERVAL_NS
from backtest_core.errors import DataError
from backtest_marketdata.binance_rest import BinanceKlineClient, BinanceSettings, Market
from backtest_marketdata.ingest import FileOutcome, Ingestor, IngestSummary, discover
from backtest_marketdata.mongo import DEFAULT_DATABASE, database_name, writer_client
from pymongo.errors import PyMongoError

EXIT_OK, EXIT_REJECTED, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_URI = "mongodb://127.0.0.1:27017/?replicaSet=rs0"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `ingest` and `fetch` subcommands to the `backtest` parser."""
    ingest = subparsers.add_parser(
        "ingest",
        help="store Binance kline archives (.zip/.csv) in MongoDB",
        description="Verify (.CHECKSUM), parse and store Binance kline archives; re-ingesting adds nothing.",
    )
    ingest.add_argument("paths", nargs="+", metavar="PATH|GLOB", help="files, folders (recursive) or globs")
    _database_options(ingest)
    ingest.add_argument("--symbol", help="symbol of every file (default: from each file name)")
    ingest.add_argument(
        "--interval", choices=sorted(INTERVAL_NS), help="interval (default: from the file name)"
    )
    ingest.add_argument("--force", action="store_true", help="re-read files already ingested byte for byte")
    ingest.add_argument("--quiet", action="store_true", help="no progress bar")
    ingest.set_defaults(handler=run_ingest)

    fetch = subparsers.add_parser(
        "fetch",
        help="download klines from the Binance REST API into MongoDB (resumes where it stopped)",
        description="Page through GET /api/v3/klines (or /fapi/v1/klines) and store the bars.",
    )
    fetch.add_argument("symbol", help="e.g. BTCUSDT")
    fetch.add_argument("interval", choices=sorted(INTERVAL_NS))
    fetch.add_argument("--start", required=True, help="UTC start, ISO-8601 (e.g. 2024-01-01)")
    fetch.add_argument("--end", help="UTC end, exclusive, ISO-8601 (default: now)")
    fetch.add_argument("--futures", action="store_true", help="USD-M futures (/fapi/v1/klines)")
    fetch.add_argument(
        "--base-url",
        default=os.environ.get("BINANCE_BASE_URL"),
        help="API base URL (default: $BINANCE_BASE_URL or the public endpoint of the market)",
    )
    _database_options(fetch)
    fetch.set_defaults(handler=run_fetch)


def _database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mongodb-uri",
        default=os.environ.get("MONGODB_URI", DEFAULT_URI),
        help="MongoDB URI with a user that may write (default: $MONGODB_URI or %(default)s)",
    )
    parser.add_argument("--database", help=f"database (default: the URI's, else {DEFAULT_DATABASE})")


def run_ingest(args: argparse.Namespace) -> int:
    """Ingest the given paths and print the summary; see the module docstring for exit codes."""
    try:
        paths = discover(args.paths)
    except DataError as error:
        print(f"backtest ingest: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    client = writer_client(args.mongodb_uri, serverSelectionTimeoutMS=10_000)
    try:
        ingestor = Ingestor(client[args.database or database_name(args.mongodb_uri)])
        ingestor.ensure_indexes()
        summary = _ingest_with_progress(ingestor, paths, args)
    except PyMongoError as error:
        print(f"backtest ingest: database {_redact(args.mongodb_uri)}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        client.close()
    print(summary_text(summary))
    return EXIT_REJECTED if summary.count("rejected") else EXIT_OK


def _ingest_with_progress(ingestor: Ingestor, paths: list[Any], args: argparse.Namespace) -> IngestSummary:
    try:
        from tqdm import tqdm
    except ImportError:  # progress is a nicety: ingest works without tqdm
        tqdm = None
    bar = None if args.quiet or tqdm is None else tqdm(total=len(paths), unit="file", file=sys.stderr)

    def on_file(outcome: FileOutcome) -> None:
        if outcome.status == "rejected":
            message = f"rejected: {outcome.message}"
            (bar.write(message, file=sys.stderr) if bar is not None else print(message, file=sys.stderr))
        if bar is not None:
            bar.set_postfix_str(f"{outcome.symbol or '?'} {outcome.status}", refresh=False)
            bar.update(1)

    try:
        return ingestor.ingest(
            paths, symbol=args.symbol, interval=args.interval, force=args.force, on_file=on_file
        )
    finally:
        if bar is not None:
            bar.close()


def summary_text(summary: IngestSummary) -> str:
    """Return the human summary: files added/skipped/rejected and bars added/replaced."""
    lines = [
        f"files: {summary.count('added')} added, {summary.count('skipped')} skipped, "
        f"{summary.count('rejected')} rejected",
        f"candles: {summary.candles_added} added, {summary.candles_replaced} replaced, "
        f"{sum(f.unchanged for f in summary.files)} already stored",
    ]
    lines += [f"  rejected {f.message}" for f in summary.rejected]
    return "\n".join(lines)


def run_fetch(args: argparse.Namespace) -> int:
    """Fetch one symbol's klines into MongoDB, resuming after the last stored bar in range."""
    try:
        start_ns = _parse_time(args.start, "--start")
        end_ns = _parse_time(args.end, "--end") if args.end else None
    except DataError as error:
        print(f"backtest fetch: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    market: Market = "futures" if args.futures else "spot"
    default_url = "https://fapi.binance.com" if args.futures else "https://api.binance.com"
    settings = BinanceSettings(base_url=args.base_url or default_url, market=market)
    client = writer_client(args.mongodb_uri, serverSelectionTimeoutMS=10_000)
    api = BinanceKlineClient(settings)
    try:
        ingestor = Ingestor(client[args.database or database_name(args.mongodb_uri)])
        ingestor.ensure_indexes()
        report = api.fetch_into(ingestor.candles, args.symbol, args.interval, start_ns, end_ns)
        ingestor.symbols.ensure(args.symbol, market)
        ingestor.symbols.set_coverage(ingestor.candles.coverage(args.symbol, args.interval))
    except (DataError, PyMongoError) as error:
        print(f"backtest fetch: {error}", file=sys.stderr)
        return EXIT_REJECTED
    finally:
        api.close()
        client.close()
    counts = f"{report.added} added, {report.replaced} replaced, {api.requests} requests"
    print(f"{args.symbol} {args.interval}: {counts}")
    return EXIT_OK


def _parse_time(text: str, option: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise DataError(
            f"{option} must be ISO-8601 like 2024-01-01 or 2024-01-01T12:00, was {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000) * 1000


def _redact(uri: str) -> str:
    """Hide the password of a URI in messages."""
    if "@" not in uri or "://" not in uri:
        return uri
    scheme, rest = uri.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
