"""The backtest run: signals, order proposals, the replay of fills and cash, equity and the result."""
