"""Candle and symbol storage in MongoDB, and Binance ingestion."""
