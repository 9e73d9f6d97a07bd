"""Static checks of uploaded strategy source: size, syntax, one BaseStrategy subclass. Never executes it.

The source is only parsed with `ast.parse`; nothing of it is imported, compiled to bytecode or run in
the gateway. It runs only inside the sandbox (`backtest_core.loader` loads it there).
"""

from __future__ import annotations

import ast

from backtest_gateway.errors import StrategyRejected

BASE_CLASS = "BaseStrategy"


def strategy_class_name(source: str, *, max_bytes: int, class_name: str | None = None) -> str:
    """Return the strategy class of `source` or raise StrategyRejected saying what was wrong.

    With `class_name`, that top-level class must derive from BaseStrategy; without it, exactly one
    top-level class may.
    A base counts when it is spelled `BaseStrategy` or `<anything>.BaseStrategy` (e.g.
    `backtest_core.strategy.BaseStrategy`), or is another class of the same source that does.
    """
    size = len(source.encode())
    if size > max_bytes:
        raise StrategyRejected(
            f"strategy source must be at most {max_bytes} bytes (UTF-8), was {size} bytes", field="source"
        )
    if not source.strip():
        raise StrategyRejected("strategy source must not be empty", field="source")
    try:
        tree = ast.parse(source, filename="<strategy>", mode="exec")
    except SyntaxError as error:
        where = f"line {error.lineno}" + (f", column {error.offset}" if error.offset else "")
        raise StrategyRejected(
            f"syntax error in strategy source at {where}: {error.msg}", field="source"
        ) from error
    except ValueError as error:  # e.g. null bytes
        raise StrategyRejected(
            f"strategy source is not valid Python text: {error}", field="source"
        ) from error
    found = _strategy_classes(tree)
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


def _strategy_classes(tree: ast.Module) -> list[str]:
    """Names of top-level classes deriving (directly or via classes defined earlier) from BaseStrategy."""
    derived: set[str] = {BASE_CLASS}
    found: list[str] = []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        if any(_base_name(base) in derived for base in node.bases):
            derived.add(node.name)
            found.append(node.name)
    return found
