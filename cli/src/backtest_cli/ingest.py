"""`backtest ingest` (Binance kline archives into MongoDB) and `backtest fetch` (Binance REST into MongoDB).

The database is `--mongodb-uri`, else ``$MONGODB_URI``, else ``MONGODB_URI`` of the platform's
``.run/env`` (see `backtest_cli.platform_env`), else the local default; the summary says which.
Exit codes: 0 every file stored or skipped; 1 some files rejected (each named once, with its line, on
stderr); 2 bad input (no such path, bad option) or the database cannot be reached or refuses the user.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backtest_core.errors import DataError
from backtest_core.model.candles import INTERVAL_NS
from backtest_marketdata.binance_rest import BinanceKlineClient, BinanceSettings, Market
from backtest_marketdata.ingest import FileOutcome, Ingestor, IngestSummary, discover
from backtest_marketdata.mongo import DEFAULT_DATABASE, database_name, writer_client
from pymongo.errors import OperationFailure, PyMongoError, ServerSelectionTimeoutError

from backtest_cli.platform_env import ENV_FILE, NO_RUN_DIR, PlatformEnvError, Setting, find_setting, run_file

EXIT_OK, EXIT_REJECTED, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_URI = "mongodb://127.0.0.1:27017/?replicaSet=rs0"
URI_ENV = "MONGODB_URI"
AUTH_ERROR_CODES = {13, 18}  # Unauthorized, AuthenticationFailed
SHOWN_NAMES = 5


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `ingest` and `fetch` subcommands to the `backtest` parser."""
    ingest = subparsers.add_parser(
        "ingest",
        help="store Binance kline archives (.zip/.csv) in MongoDB",
        description="Verify (.CHECKSUM), parse and store Binance kline archives; the last ingest of a "
        "range wins, and a file is skipped only while the stored bars still equal its own.",
    )
    ingest.add_argument("paths", nargs="+", metavar="PATH|GLOB", help="files, folders (recursive) or globs")
    _database_options(ingest)
    ingest.add_argument("--symbol", help="symbol of every file (default: from each file name)")
    ingest.add_argument(
        "--interval", choices=sorted(INTERVAL_NS), help="interval (default: from the file name)"
    )
    ingest.add_argument(
        "--force",
        action="store_true",
        help="re-read and compare bar by bar files the ledger would skip (same bytes, stored bars unchanged)",
    )
    ingest.add_argument(
        "--require-checksum", action="store_true", help="reject files without a .CHECKSUM beside them"
    )
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
        help=f"MongoDB URI with a user that may write (default: ${URI_ENV}, else {URI_ENV} in the "
        f"platform's .run/env written by scripts/infra up, else {DEFAULT_URI})",
    )
    parser.add_argument("--database", help=f"database (default: the URI's, else {DEFAULT_DATABASE})")


def mongodb_uri(option: str | None) -> Setting:
    """Return the URI to use and its source: the option, $MONGODB_URI, the platform's .run/env, default."""
    if option:
        return Setting(option, "--mongodb-uri")
    found = find_setting(URI_ENV)
    env_file = run_file(Path(ENV_FILE))
    if env_file is None:
        looked = NO_RUN_DIR
    else:
        looked = (
            f"none in {env_file}" if env_file.is_file() else f"no {env_file} (scripts/infra up writes it)"
        )
    return found or Setting(DEFAULT_URI, f"default: {URI_ENV} unset, {looked}")


def database_problem(uri: Setting, error: PyMongoError) -> str:
    """Return what went wrong with the database and what to set, without the URI's password."""
    where = f"database {_redact(uri.value)} (from {uri.source})"
    env_file = run_file(Path(ENV_FILE))
    remedy = (
        f"set {URI_ENV} (or --mongodb-uri) to a URI with a user that may write, e.g. the {URI_ENV} "
        f"that scripts/infra up writes to {env_file or 'the .run/env of the platform checkout'}"
    )
    if isinstance(error, OperationFailure) and (
        error.code in AUTH_ERROR_CODES or "auth" in str(error).lower()
    ):
        reason = (error.details or {}).get("errmsg") or str(error)
        return f"{where} refused the request ({reason}): {remedy}"
    if isinstance(error, ServerSelectionTimeoutError):
        return f"{where} did not answer in 10 s: start it (scripts/infra up) or {remedy}"
    return f"{where}: {error}"


def run_ingest(args: argparse.Namespace) -> int:
    """Ingest the given paths and print the summary; see the module docstring for exit codes."""
    try:
        paths = discover(args.paths)
        uri = mongodb_uri(args.mongodb_uri)
    except (DataError, PlatformEnvError) as error:
        print(f"backtest ingest: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    client = writer_client(uri.value, serverSelectionTimeoutMS=10_000)
    try:
        ingestor = Ingestor(client[args.database or database_name(uri.value)])
        ingestor.ensure_indexes()
        summary = _ingest_with_progress(ingestor, paths, args)
    except PyMongoError as error:
        print(f"backtest ingest: {database_problem(uri, error)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        client.close()
    print(f"MongoDB: {_redact(uri.value)} (from {uri.source})")
    print(summary_text(summary, forced=args.force))
    return EXIT_REJECTED if summary.count("rejected") else EXIT_OK


def _ingest_with_progress(ingestor: Ingestor, paths: list[Any], args: argparse.Namespace) -> IngestSummary:
    try:
        from tqdm import tqdm
    except ImportError:  # progress is a nicety: ingest works without tqdm
        tqdm = None
    # disable=None: a bar only when stderr is a terminal (never in logs, pipes or captured output)
    bar = (
        None
        if args.quiet or tqdm is None
        else tqdm(total=len(paths), unit="file", file=sys.stderr, disable=None)
    )

    def on_file(outcome: FileOutcome) -> None:
        if outcome.status == "rejected":
            message = f"rejected: {outcome.message}"
            (bar.write(message, file=sys.stderr) if bar is not None else print(message, file=sys.stderr))
        if bar is not None:
            bar.set_postfix_str(f"{outcome.symbol or '?'} {outcome.status}", refresh=False)
            bar.update(1)

    try:
        return ingestor.ingest(
            paths,
            symbol=args.symbol,
            interval=args.interval,
            force=args.force,
            require_checksum=args.require_checksum,
            on_file=on_file,
        )
    finally:
        if bar is not None:
            bar.close()


def summary_text(summary: IngestSummary, *, forced: bool = False) -> str:
    """Return the human summary: files, bars, checksums and what `--force` did (rejections are on stderr)."""
    lines = [
        f"files: {summary.count('added')} added, {summary.count('skipped')} skipped, "
        f"{summary.count('rejected')} rejected",
        f"candles: {summary.candles_added} added, {summary.candles_replaced} replaced, "
        f"{sum(f.unchanged for f in summary.files)} already stored",
    ]
    unverified = [Path(f.path).name for f in summary.not_verified]
    verified = sum(1 for f in summary.files if f.status != "rejected" and f.checksum == "verified")
    checksums = f"checksums: {verified} verified, {len(unverified)} not verified"
    if unverified:
        more = len(unverified) - SHOWN_NAMES
        names = ", ".join(unverified[:SHOWN_NAMES]) + (f" and {more} more" if more > 0 else "")
        checksums += f" (no .CHECKSUM beside it): {names}"
    lines.append(checksums)
    if forced:
        count = len(summary.forced)
        changed = sum(f.added + f.replaced for f in summary.forced)
        were = "file already ingested was" if count == 1 else "files already ingested were"
        lines.append(f"--force: {count} {were} re-read and compared bar by bar: {changed} candles changed")
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
    try:
        uri = mongodb_uri(args.mongodb_uri)
    except PlatformEnvError as error:
        print(f"backtest fetch: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    client = writer_client(uri.value, serverSelectionTimeoutMS=10_000)
    api = BinanceKlineClient(settings)
    try:
        ingestor = Ingestor(client[args.database or database_name(uri.value)])
        ingestor.ensure_indexes()
        report = api.fetch_into(ingestor.candles, args.symbol, args.interval, start_ns, end_ns)
        ingestor.symbols.ensure(args.symbol, market)
        ingestor.symbols.set_coverage(ingestor.candles.coverage(args.symbol, args.interval))
    except PyMongoError as error:
        print(f"backtest fetch: {database_problem(uri, error)}", file=sys.stderr)
        return EXIT_REJECTED
    except DataError as error:
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
