"""Static checks of uploaded strategy source: size, syntax, one BaseStrategy subclass. Never executes it.

A package (entry module `source` plus helper `files`) is checked the same way: the limits of
`backtest_core.model.strategy_package` (files, bytes, names), every module's syntax, and the entry module's
strategy class, whose base may also be a helper's class deriving from BaseStrategy.

The source is only parsed with `ast.parse`; nothing of it is imported, compiled to bytecode or run in
the gateway. It runs only inside the sandbox (`backtest_core.strategy.loader` loads it there).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping

from backtest_core.model.strategy_package import package_problem

from backtest_gateway.errors import StrategyRejected

BASE_CLASS = "BaseStrategy"


def strategy_class_name(
    source: str,
    *,
    max_bytes: int,
    class_name: str | None = None,
    files: Mapping[str, str] | None = None,
) -> str:
    """Return the strategy class of `source` or raise StrategyRejected saying what was wrong.

    With `class_name`, that top-level class must derive from BaseStrategy; without it, exactly one
    top-level class may.
    A base counts when it is spelled `BaseStrategy` or `<anything>.BaseStrategy` (e.g.
    `backtest_core.strategy.BaseStrategy`), or is another class of the same source, or a top-level
    class of a helper module, that does.
    """
    files = files or {}
    size = len(source.encode()) + sum(len(text.encode()) for text in files.values())
    if size > max_bytes:
        what = "strategy package (entry module and helpers)" if files else "strategy source"
        raise StrategyRejected(
            f"{what} must be at most {max_bytes} bytes (UTF-8), was {size} bytes", field="source"
        )
    problem = package_problem(source, files)
    if problem is not None:
        raise StrategyRejected(problem, field="files")
    if not source.strip():
        raise StrategyRejected("strategy source must not be empty", field="source")
    derived = {BASE_CLASS}
    for path, text in sorted(files.items()):
        derived.update(_strategy_classes(_parse(text, f"module {path!r}", f"files.{path}"), derived))
    found = _strategy_classes(_parse(source, "strategy source", "source"), derived)
    if class_name is not None:
        if class_name not in found:
            raise StrategyRejected(
                f"class_name must name a top-level class deriving from {BASE_CLASS}, was {class_name!r}; "
                f"the source defines {found}",
                field="class_name",
            )
        return class_name
    if len(found) != 1:
        raise StrategyRejected(
            f"strategy source must define exactly one top-level class deriving from {BASE_CLASS} "
            f"(from backtest_core.strategy import BaseStrategy), found {len(found)}: {found}; "
            "name one with class_name when there are several",
            field="source",
        )
    return found[0]


def _base_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _parse(source: str, what: str, field: str) -> ast.Module:
    """Parse without running; StrategyRejected names the module, line and column of a syntax error."""
    try:
        return ast.parse(source, filename="<strategy>", mode="exec")
    except SyntaxError as error:
        where = f"line {error.lineno}" + (f", column {error.offset}" if error.offset else "")
        raise StrategyRejected(f"syntax error in {what} at {where}: {error.msg}", field=field) from error
    except ValueError as error:  # e.g. null bytes
        raise StrategyRejected(f"{what} is not valid Python text: {error}", field=field) from error


def _strategy_classes(tree: ast.Module, bases: set[str]) -> list[str]:
    """Names of top-level classes deriving from one of `bases` (or from classes defined earlier that do)."""
    derived = set(bases)
    found: list[str] = []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        if any(_base_name(base) in derived for base in node.bases):
            derived.add(node.name)
            found.append(node.name)
    return found
