"""Load a strategy from its spec: a built-in name, {"builtin"}, {"module","class"} or {"source","class"}.

A source with `files` is a package: its helper modules are imported from memory by their top-level
names (a finder first on sys.meta_path), so nothing is written to disk and the sandbox stays read-only.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import linecache
import sys
import types
from collections.abc import Mapping, Sequence

from pydantic import ValidationError

from backtest_core.errors import StrategyLoadError
from backtest_core.model.config import (
    BuiltinStrategy,
    ModuleStrategy,
    ParamValue,
    SourceStrategy,
    StrategySpec,
)
from backtest_core.model.strategy_package import USER_MODULE, PackageModule, package_modules
from backtest_core.strategy import BaseStrategy
from backtest_core.strategy.builtins import BUILTINS


def load_strategy_class(spec: StrategySpec | Mapping[str, str]) -> type[BaseStrategy]:
    """Return the BaseStrategy subclass a spec names; raise StrategyLoadError saying what was wrong."""
    spec = _parse(spec)
    if isinstance(spec, str):
        return _builtin(spec)
    if isinstance(spec, BuiltinStrategy):
        return _builtin(spec.builtin)
    if isinstance(spec, ModuleStrategy):
        return _from_module(spec.module, spec.class_name)
    return _from_source(spec.source, spec.class_name, spec.files)


def load_strategy(spec: StrategySpec | Mapping[str, str], params: Mapping[str, ParamValue]) -> BaseStrategy:
    """Return an instance of the spec's strategy with params checked (ConfigError on bad params)."""
    cls = load_strategy_class(spec)
    try:
        return cls(**params)
    except StrategyLoadError:
        raise
    except Exception as exc:
        from backtest_core.errors import ConfigError

        if isinstance(exc, ConfigError):
            raise
        raise StrategyLoadError(f"{cls.__name__}() failed: {type(exc).__name__}: {exc}") from exc


def _parse(spec: StrategySpec | Mapping[str, str]) -> StrategySpec:
    if isinstance(spec, Mapping):
        for model in (BuiltinStrategy, ModuleStrategy, SourceStrategy):
            try:
                return model.model_validate(spec)
            except ValidationError:
                continue
        raise StrategyLoadError(
            'strategy spec must be a name, {"builtin": name}, {"module": m, "class": c} or '
            f'{{"source": code, "class": optional}}, was keys {sorted(spec)}'
        )
    return spec


def _builtin(name: str) -> type[BaseStrategy]:
    try:
        return BUILTINS[name]
    except KeyError:
        raise StrategyLoadError(
            f"unknown built-in strategy {name!r}; built-ins are {sorted(BUILTINS)}"
        ) from None


def _from_module(module: str, class_name: str) -> type[BaseStrategy]:
    try:
        mod = importlib.import_module(module)
    except Exception as exc:
        raise StrategyLoadError(f"cannot import module {module!r}: {type(exc).__name__}: {exc}") from exc
    obj = getattr(mod, class_name, None)
    if obj is None:
        raise StrategyLoadError(f"module {module!r} has no attribute {class_name!r}")
    return _check_class(obj, f"{module}:{class_name}")


class PackageImporter(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import a strategy package's helper modules from their text (one package at a time)."""

    def __init__(self, modules: Mapping[str, PackageModule]) -> None:
        self.modules = dict(modules)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        """Return a spec for one of the package's modules, None for any other name."""
        module = self.modules.get(fullname)
        if module is None:
            return None
        return importlib.util.spec_from_loader(
            fullname, self, origin=module.filename, is_package=module.is_package
        )

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        """Use the default module object."""
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        """Run the module's text in it (its tracebacks show `<user_strategy/PATH>` and its lines)."""
        package_module = self.modules[module.__name__]
        _remember_lines(package_module.filename, package_module.source)
        exec(compile(package_module.source, package_module.filename, "exec"), module.__dict__)


def install_package(files: Mapping[str, str]) -> None:
    """Make `files` the importable helper modules, replacing the previous package's (and their imports)."""
    for finder in [f for f in sys.meta_path if isinstance(f, PackageImporter)]:
        sys.meta_path.remove(finder)
        for name in finder.modules:
            sys.modules.pop(name, None)
    if files:
        importer = PackageImporter(package_modules(files))
        for name in importer.modules:
            sys.modules.pop(name, None)
        sys.meta_path.insert(0, importer)


def _remember_lines(filename: str, source: str) -> None:
    # Tracebacks of the user's code then show its lines, not only their numbers (mtime None: kept).
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)


def _from_source(source: str, class_name: str | None, files: Mapping[str, str]) -> type[BaseStrategy]:
    filename = f"<{USER_MODULE}>"
    try:
        code = compile(source, filename, "exec")
    except SyntaxError as exc:
        raise StrategyLoadError(f"syntax error in strategy source, line {exc.lineno}: {exc.msg}") from exc
    _remember_lines(filename, source)
    install_package(files)
    module = types.ModuleType(USER_MODULE)
    module.__dict__["__builtins__"] = __builtins__
    try:
        exec(code, module.__dict__)
    except Exception as exc:
        line = _user_line(exc)
        raise StrategyLoadError(
            f"strategy source raised {type(exc).__name__} while loading{line}: {exc}"
        ) from exc
    if class_name is not None:
        obj = module.__dict__.get(class_name)
        if obj is None:
            raise StrategyLoadError(f"strategy source defines no {class_name!r}")
        return _check_class(obj, class_name)
    found = [
        v
        for v in module.__dict__.values()
        if inspect.isclass(v) and issubclass(v, BaseStrategy) and v.__module__ == USER_MODULE
    ]
    if len(found) != 1:
        names = sorted(c.__name__ for c in found)
        raise StrategyLoadError(
            f"strategy source must define exactly one BaseStrategy subclass (or name it with 'class'), "
            f"found {len(found)}: {names}"
        )
    return found[0]


def _check_class(obj: object, where: str) -> type[BaseStrategy]:
    if not (inspect.isclass(obj) and issubclass(obj, BaseStrategy)):
        raise StrategyLoadError(
            f"{where} must be a subclass of backtest_core.strategy.BaseStrategy, was {obj!r}"
        )
    return obj


def _user_line(exc: BaseException) -> str:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith(f"<{USER_MODULE}"):
            line = tb.tb_lineno
        tb = tb.tb_next
    return "" if line is None else f" at line {line}"
