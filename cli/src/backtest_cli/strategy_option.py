"""What `--strategy` names besides built-ins, modules and .py files: a package path, or a stored strategy.

No HTTP client here: `backtest run` imports this module too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from backtest_core.model.config import SourceStrategy
from backtest_core.model.strategy_package import read_strategy_package

STORED_PATTERN = re.compile(r"^(?:user:)?(?P<name>[a-z][a-z0-9_]{0,63})(?:@(?P<version>[0-9]+))?$")
STORED_FORMS = "user:NAME, user:NAME@VERSION or NAME@VERSION"


def package_spec(text: str) -> SourceStrategy | None:
    """Read `PATH[:Class]` when PATH is a folder or a .zip (StrategyLoadError if it is not a package)."""
    path_text, sep, class_name = text.rpartition(":")
    if not sep or not class_name.isidentifier():
        path_text, class_name = text, ""
    path = Path(path_text)
    if not (path.is_dir() or path.suffix == ".zip"):
        return None
    return read_strategy_package(path, class_name or None)


def stored_strategy_ref(text: str) -> dict[str, Any] | None:
    """Return `{"user": NAME, "version": V}` for `user:NAME[@V]` or `NAME@V`; None for other forms."""
    if not (text.startswith("user:") or "@" in text):
        return None
    match = STORED_PATTERN.match(text)
    if match is None:
        raise ValueError(
            f"a stored strategy is {STORED_FORMS} (NAME: lower-case letters, digits, _), was {text!r}"
        )
    ref: dict[str, Any] = {"user": match["name"]}
    if match["version"] is not None:
        ref["version"] = int(match["version"])
    return ref
