"""Root conftest: load the shared test kit (tests/fixtures) and its fixtures for every package's tests.

The kit is imported under the unique name ``backtest_testinfra`` (not ``tests.fixtures``), so no
other ``tests`` package on sys.path can shadow it. Tests may ``from backtest_testinfra import
NatsServer, MongoEmulator``. Its fixture modules are registered as plugins (``pytest_plugins``): their
fixtures are visible to every test, and loading them imports no Docker SDK, pymongo or nats.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

PLUGIN = "backtest_testinfra"


def _load_plugin() -> ModuleType:
    if PLUGIN in sys.modules:
        return sys.modules[PLUGIN]
    init = Path(__file__).resolve().parent / "tests" / "fixtures" / "__init__.py"
    spec = importlib.util.spec_from_file_location(PLUGIN, init, submodule_search_locations=[str(init.parent)])
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the test fixtures plugin from {init}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[PLUGIN] = module
    spec.loader.exec_module(module)
    return module


pytest_plugins = [f"{PLUGIN}.{name}" for name in _load_plugin().FIXTURE_MODULES]
