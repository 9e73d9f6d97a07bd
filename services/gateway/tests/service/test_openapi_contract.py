"""The OpenAPI document reads well in a generated client: short, unique operation ids."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.service


def _operation_ids(gateway) -> dict[tuple[str, str], str]:
    paths = gateway.client.get("/openapi.json").json()["paths"]
    return {(method, path): op["operationId"] for path, ops in paths.items() for method, op in ops.items()}


def test_operation_ids_are_the_handlers_names_not_derived_from_path_and_method(gateway):
    ids = _operation_ids(gateway)

    assert ids["post", "/backtest/submit"] == "submit_backtest"
    assert ids["get", "/backtest/status/{task_id}"] == "get_backtest_status"
    assert ids["get", "/backtest/results/{task_id}"] == "get_backtest_results"
    assert ids["post", "/analysis/portfolio"] == "analyse_portfolio"
    long_or_derived = [i for i in ids.values() if not re.fullmatch(r"[a-z]+(_[a-z]+){0,3}", i)]
    assert long_or_derived == []
    assert len(set(ids.values())) == len(ids)
