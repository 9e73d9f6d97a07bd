"""Fixtures of the CLI's tests: the gateway's fakes, for the tests that run `--remote` commands against it."""

from __future__ import annotations

from pathlib import Path

from backtest_testinfra import load_by_path

GATEWAY_TESTS = Path(__file__).resolve().parents[2] / "services" / "gateway" / "tests"
load_by_path("gateway_fakes", GATEWAY_TESTS / "fakes")
