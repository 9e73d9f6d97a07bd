"""A strategy package: one entry module plus helper modules (as text), its limits, and reading one.

A package travels as a `SourceStrategy`: `source` is the entry module, `files` maps each helper's path
inside the package (`helpers.py`, `lib/__init__.py`, `lib/levels.py`) to its text. The entry module
imports helpers by their top-level names (`from helpers import sma`, `from lib.levels import x`).
"""

from __future__ import annotations

import re
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from backtest_core.errors import StrategyLoadError

if TYPE_CHECKING:  # config validates packages with package_problem: import it lazily, no cycle
    from backtest_core.model.config import SourceStrategy

PACKAGE_MAX_FILES = 20  # helper modules besides the entry module
PACKAGE_MAX_BYTES = 200_000  # UTF-8 bytes of the entry module and every helper together
MODULE_PATH_PATTERN = r"^[a-z_][a-z0-9_]{0,63}(/[a-z_][a-z0-9_]{0,63}){0,3}\.py$"
MODULE_PATH_RULE = (
    "module paths must be lower-case letters, digits and _ , at most 4 levels deep, ending in .py "
    "(like helpers.py or lib/levels.py)"
)
ENTRY_MODULE = "strategy.py"
USER_MODULE = "user_strategy"  # the entry module's name when loaded
# Top-level names a helper may not take: the standard library, and what the sandbox image installs.
RESERVED_MODULES = frozenset(sys.stdlib_module_names) | {
    USER_MODULE,
    "backtest_core",
    "numpy",
    "pandas",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "typing_extensions",
    "dateutil",
    "pytz",
    "tzdata",
    "six",
}
_MODULE_PATH = re.compile(MODULE_PATH_PATTERN)
_IGNORED_PARTS = ("__pycache__",)


@dataclass(frozen=True)
class PackageModule:
    """One module of a package as the loader imports it: its dotted name, text and traceback filename."""

    name: str
    source: str
    filename: str
    is_package: bool


def package_problem(source: str, files: Mapping[str, str]) -> str | None:
    """Return what breaks the package limits (files, bytes, names), or None when it is within them."""
    if len(files) > PACKAGE_MAX_FILES:
        return f"a strategy package holds at most {PACKAGE_MAX_FILES} helper modules, was {len(files)}"
    for path in files:
        if not _MODULE_PATH.match(path):
            return f"{MODULE_PATH_RULE}, was {path!r}"
        top = path.split("/")[0].removesuffix(".py")
        if top in RESERVED_MODULES:
            return (
                f"helper modules must not shadow the standard library, the engine or its libraries "
                f"({top!r} is taken), was {path!r}"
            )
    size = len(source.encode()) + sum(len(text.encode()) for text in files.values())
    if size > PACKAGE_MAX_BYTES:
        return (
            f"a strategy package (entry module and helpers) must be at most {PACKAGE_MAX_BYTES} bytes "
            f"(UTF-8), was {size} bytes"
        )
    return None


def package_modules(files: Mapping[str, str]) -> dict[str, PackageModule]:
    """Return every importable module of the helpers by dotted name; folders without __init__.py count too."""
    modules: dict[str, PackageModule] = {}
    for path, text in files.items():
        parts = PurePosixPath(path).with_suffix("").parts
        for depth in range(1, len(parts)):
            folder = ".".join(parts[:depth])
            modules.setdefault(folder, PackageModule(folder, "", _filename("/".join(parts[:depth])), True))
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        modules[name] = PackageModule(name, text, _filename(path), is_package)
    return modules


def _filename(path: str) -> str:
    return f"<{USER_MODULE}/{path}>"


def read_strategy_package(path: Path, class_name: str | None = None) -> SourceStrategy:
    """Read a folder or a .zip into a SourceStrategy (StrategyLoadError saying what is wrong)."""
    if path.is_dir():
        texts = _read_folder(path)
    elif path.suffix == ".zip" and path.is_file():
        texts = _read_zip(path)
    else:
        raise StrategyLoadError(f"a strategy package must be a folder or a .zip file, was {str(path)!r}")
    entry = _entry(texts)
    files = {name: text for name, text in sorted(texts.items()) if name != entry}
    problem = package_problem(texts[entry], files)
    if problem is not None:
        raise StrategyLoadError(f"{path}: {problem}")
    from backtest_core.model.config import SourceStrategy

    return SourceStrategy(source=texts[entry], class_name=class_name, files=files)


def _keep(relative: PurePosixPath) -> bool:
    if any(part.startswith(".") or part in _IGNORED_PARTS for part in relative.parts):
        return False
    if relative.suffix == ".pyc":
        return False
    if relative.suffix != ".py":
        raise StrategyLoadError(f"a strategy package holds only .py modules, found {relative.as_posix()!r}")
    return True


def _read_folder(root: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = PurePosixPath(file.relative_to(root).as_posix())
        if _keep(relative):
            _add(texts, relative.as_posix(), file.read_bytes())
    return texts


def _read_zip(archive: Path) -> dict[str, str]:
    with zipfile.ZipFile(archive) as zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        total = sum(m.file_size for m in members)
        if total > PACKAGE_MAX_BYTES * 2:
            raise StrategyLoadError(
                f"{archive}: a strategy package must be at most {PACKAGE_MAX_BYTES} bytes, "
                f"its zip unpacks to {total} bytes"
            )
        tops = {PurePosixPath(m.filename).parts[0] for m in members}
        strip = len(tops) == 1 and all(len(PurePosixPath(m.filename).parts) > 1 for m in members)
        texts: dict[str, str] = {}
        for member in members:
            parts = PurePosixPath(member.filename).parts[1 if strip else 0 :]
            relative = PurePosixPath(*parts)
            if _keep(relative):
                _add(texts, relative.as_posix(), zf.read(member))
    return texts


def _add(texts: dict[str, str], name: str, data: bytes) -> None:
    try:
        texts[name] = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise StrategyLoadError(f"module {name!r} must be UTF-8 text: {error}") from None


def _entry(texts: Mapping[str, str]) -> str:
    if ENTRY_MODULE in texts:
        return ENTRY_MODULE
    top = sorted(name for name in texts if "/" not in name and name != "__init__.py")
    if len(top) == 1:
        return top[0]
    raise StrategyLoadError(
        f"a strategy package needs one entry module at its root: {ENTRY_MODULE}, or a single top-level "
        f".py file; found {top}"
    )
