"""Candle and symbol storage in MongoDB (bucketed documents), Binance archive ingestion and REST client."""

from backtest_marketdata.binance_rest import BinanceApiError, BinanceKlineClient, BinanceSettings
from backtest_marketdata.bucket_cache import BucketCache
from backtest_marketdata.candle_store import MongoCandleStore, find_gaps
from backtest_marketdata.ingest import FileOutcome, Ingestor, IngestSummary, discover, verify_checksum
from backtest_marketdata.models import (
    Coverage,
    Gap,
    IntervalCoverage,
    Symbol,
    SymbolFilter,
    SymbolPage,
    WriteReport,
)
from backtest_marketdata.mongo import database_name, ensure_read_only_user, reader_client, writer_client
from backtest_marketdata.symbol_store import MongoSymbolStore

__all__ = [
    "BinanceApiError",
    "BinanceKlineClient",
    "BinanceSettings",
    "BucketCache",
    "Coverage",
    "FileOutcome",
    "Gap",
    "IngestSummary",
    "Ingestor",
    "IntervalCoverage",
    "MongoCandleStore",
    "MongoSymbolStore",
    "Symbol",
    "SymbolFilter",
    "SymbolPage",
    "WriteReport",
    "database_name",
    "discover",
    "ensure_read_only_user",
    "find_gaps",
    "reader_client",
    "verify_checksum",
    "writer_client",
]
