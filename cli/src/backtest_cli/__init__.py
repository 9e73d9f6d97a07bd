"""The `backtest` command line."""
