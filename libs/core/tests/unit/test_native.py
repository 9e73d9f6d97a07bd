"""Without its compiled kernels the engine does not start: the ImportError says how to build them."""

from __future__ import annotations

import subprocess
import sys

BLOCK_AND_IMPORT = """
import importlib.abc, sys

class NotBuilt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "backtest_core.native._replay":
            raise ImportError("No module named 'backtest_core.native._replay'")
        return None

sys.meta_path.insert(0, NotBuilt())
import backtest_core.engine.run
"""


def test_a_missing_extension_is_an_import_error_naming_the_install_command() -> None:
    command = [sys.executable, "-c", BLOCK_AND_IMPORT]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: the engine's C extensions are not built")
    assert "`pip install -e libs/core`" in last
    assert "No module named 'backtest_core.native._replay'" in last
