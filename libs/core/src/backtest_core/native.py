"""The engine's optional C extensions, loaded once; each has a numpy/Python twin that runs without it.

`pip install libs/core` compiles them when a C compiler is present (pyproject: optional extensions).
`KERNELS` is `backtest_core._kernels` (signals, drawdown, moments, folds, equity), or None.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def load(name: str) -> ModuleType | None:
    """Return the extension `backtest_core.<name>`, or None when it was not built."""
    try:
        return importlib.import_module(f"backtest_core.{name}")
    except ImportError:
        return None


KERNELS = load("_kernels")
