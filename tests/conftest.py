"""Cross-service tests: everything under tests/integration and tests/e2e is marked by its layer.

The infrastructure fixtures themselves (``nats_url``, ``mongo_uri``, ``docker_client``,
``sandbox_image``, ...) live in tests/fixtures and are loaded for the whole repo by /conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
LAYERS = {"integration": pytest.mark.integration, "e2e": pytest.mark.e2e}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests in tests/integration and tests/e2e with their layer's marker."""
    for item in items:
        path = Path(str(item.path)).resolve()
        if HERE not in path.parents:
            continue
        layer = path.relative_to(HERE).parts[0]
        if layer in LAYERS:
            item.add_marker(LAYERS[layer])
