"""The whole-platform harness of the fault and load tests is the test kit's: backtest_testinfra.stack.

This module only keeps the path that bench/platform_bench.py loads (and, through it, bench/soak.py,
bench/throughput.py and bench/sweep_platform.py); tests import ``backtest_testinfra.stack``.
"""

from __future__ import annotations

from backtest_testinfra.stack import SYMBOL, Service, Stack, percentiles, small_config
from backtest_testinfra.stack_clients import JWT_SECRET, TERMINAL, SandboxContainer, StackError

__all__ = [
    "JWT_SECRET",
    "SYMBOL",
    "TERMINAL",
    "SandboxContainer",
    "Service",
    "Stack",
    "StackError",
    "percentiles",
    "small_config",
]
