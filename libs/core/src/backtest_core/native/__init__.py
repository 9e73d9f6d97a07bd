"""The engine's compiled kernels: imported here once, with a message that says how to build them.

`backtest_core.native._kernels` (window sums, sma_cross's signals, drawdown, return moments, the equity curve;
`_kernels_src/`) and `backtest_core.native._replay` (the replay loop; `_replay.c`) are the only implementation
of what they compute. `pip install -e libs/core` compiles them (it needs a C compiler: gcc or clang).
"""

from __future__ import annotations

try:
    from backtest_core.native import _kernels, _replay
except ImportError as exc:
    raise ImportError(
        f"the engine's C extensions are not built ({exc}); install the package with a C compiler "
        "present: `pip install -e libs/core` (Debian/Ubuntu: `apt-get install gcc python3-dev` first)"
    ) from exc

__all__ = ["_kernels", "_replay"]
