"""`python -m backtest_core [--job-dir DIR]`: the sandbox entry point (see backtest_core.sandbox.entry)."""

import os
import sys

# Never import from the working directory (/tmp in the sandbox, which the strategy process can write).
sys.path[:] = [p for p in sys.path if p not in ("", ".", os.getcwd())]

from backtest_core.sandbox.entry import main  # noqa: E402

sys.exit(main())
