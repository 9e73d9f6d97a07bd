"""`python -m backtest_core [--job-dir DIR]`: the sandbox entry point (see backtest_core.sandbox.entry)."""

import os
import sys

# Never import from the working directory (/tmp in the sandbox, which the strategy process can write).
sys.path[:] = [p for p in sys.path if p not in ("", ".", os.getcwd())]

# One BLAS thread: the sandbox has its CPU quota (RUNNER_CPUS, 1 by default), and OpenBLAS's idle threads
# spin on it (measured: a chunk of 45 trials on 525,600 bars took 6.6 s under --cpus 1 with them, 3.6 s
# with one). OpenBLAS reads the variable when numpy loads it; the strategy's environment stays as it was.
os.environ["OPENBLAS_NUM_THREADS"] = "1"
import numpy  # noqa: E402, F401

del os.environ["OPENBLAS_NUM_THREADS"]

from backtest_core.sandbox.entry import main  # noqa: E402

sys.exit(main())
