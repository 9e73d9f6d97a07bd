"""An uploaded strategy's declared params, read from its source without running it.

The strategy class's `params = {"name": Param(default, "doc", minimum=..., maximum=...)}` is read
with `ast` when every part is a literal; a param declared any other way (built by a call, a
comprehension, a name) is not guessed at: it is listed only by the stored default, typed by its value.
"""

from __future__ import annotations

import ast
from typing import Any

from backtest_core.model.config import Params

from backtest_gateway.schemas_strategy import ParamInfo

PARAM_CALL = "Param"


def declared_params(source: str, class_name: str, defaults: Params) -> list[ParamInfo]:
    """Return the params `class_name` declares in `source`, with `defaults` (the stored ones) on top."""
    found = {info.name: info for info in _literal_params(source, class_name)}
    for name, value in defaults.items():
        base = found.get(name)
        kind = type(value).__name__ if base is None else base.type
        found[name] = ParamInfo(
            name=name,
            default=value,
            type=kind,
            minimum=None if base is None else base.minimum,
            maximum=None if base is None else base.maximum,
            doc="" if base is None else base.doc,
        )
    return list(found.values())


def _literal_params(source: str, class_name: str) -> list[ParamInfo]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for statement in node.body:
                value = _params_value(statement)
                if isinstance(value, ast.Dict):
                    return [p for k, v in zip(value.keys, value.values, strict=True) if (p := _param(k, v))]
    return []


def _params_value(statement: ast.stmt) -> ast.expr | None:
    if isinstance(statement, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "params" for t in statement.targets
    ):
        return statement.value
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
        return statement.value if statement.target.id == "params" else None
    return None


def _param(key: ast.expr | None, value: ast.expr) -> ParamInfo | None:
    if not (isinstance(key, ast.Constant) and isinstance(key.value, str) and isinstance(value, ast.Call)):
        return None
    called = value.func
    if isinstance(called, ast.Attribute):
        name = called.attr
    else:
        name = called.id if isinstance(called, ast.Name) else ""
    if name != PARAM_CALL:
        return None
    try:
        args: list[Any] = [ast.literal_eval(a) for a in value.args]
        kwargs: dict[str, Any] = {k.arg: ast.literal_eval(k.value) for k in value.keywords if k.arg}
    except ValueError:
        return None
    fields = dict(zip(("default", "doc", "minimum", "maximum"), args, strict=False)) | kwargs
    default = fields.get("default")
    if not isinstance(default, bool | int | float | str):
        return None
    bounds = [fields.get("minimum"), fields.get("maximum")]
    if any(b is not None and (isinstance(b, bool) or not isinstance(b, int | float)) for b in bounds):
        return None
    return ParamInfo(
        name=key.value,
        default=default,
        type=type(default).__name__,
        minimum=bounds[0],
        maximum=bounds[1],
        doc=str(fields.get("doc", "")),
    )
