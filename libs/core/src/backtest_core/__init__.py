"""The backtest engine and the platform's message contracts."""

__version__ = "0.1.0"
