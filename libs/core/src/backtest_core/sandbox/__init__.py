"""The sandbox entry (`python -m backtest_core`): a job directory in, protocol lines out, the user's
strategy in a forked process that only sends signals."""
