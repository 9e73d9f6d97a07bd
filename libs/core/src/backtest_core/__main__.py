"""`python -m backtest_core [--job-dir DIR]`: the sandbox entry point (see backtest_core.sandbox)."""

import sys

from backtest_core.sandbox import main

sys.exit(main())
