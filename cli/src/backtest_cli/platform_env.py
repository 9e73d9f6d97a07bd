"""Find the local platform's settings: the explicit environment first, then the run folder the scripts write.

`scripts/infra up` writes ``<run>/env`` (``MONGODB_URI=...`` lines) and `scripts/up` writes
``<run>/secrets/jwt``, where ``<run>`` is ``$BACKTEST_RUN_DIR`` or ``.run`` in the checkout whose
virtual environment (``<checkout>/.venv``) runs this command. Every value says where it came from.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

RUN_DIR_ENV = "BACKTEST_RUN_DIR"
ENV_FILE = "env"
JWT_SECRET_FILE = Path("secrets") / "jwt"
_ASSIGNMENT = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


class PlatformEnvError(Exception):
    """A settings file of the run folder cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Setting:
    """A value and where it came from (an option, a variable or a file), for messages."""

    value: str
    source: str


def run_dir() -> Path | None:
    """Return ``$BACKTEST_RUN_DIR``, else ``<checkout>/.run`` when running from ``<checkout>/.venv``."""
    given = os.environ.get(RUN_DIR_ENV)
    if given:
        return Path(given)
    prefix = Path(sys.prefix)
    if sys.prefix != sys.base_prefix and prefix.name == ".venv":
        return prefix.parent / ".run"
    return None


def read_env_file(path: Path) -> dict[str, str]:
    """Return the ``NAME=value`` assignments of a shell env file (values optionally quoted)."""
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PlatformEnvError(f"{path}: cannot read: {error.strerror or error}") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _ASSIGNMENT.match(line)
        if match is None:
            raise PlatformEnvError(f"{path}: line {number}: expected NAME=value, was {line[:80]!r}")
        name, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name] = value
    return values


def find_setting(name: str) -> Setting | None:
    """Return `name` from the environment, else from ``<run>/env``, else None."""
    if os.environ.get(name):
        return Setting(os.environ[name], name)
    folder = run_dir()
    if folder is None or not (folder / ENV_FILE).is_file():
        return None
    value = read_env_file(folder / ENV_FILE).get(name)
    return Setting(value, str(folder / ENV_FILE)) if value else None


def find_jwt_secret(name: str) -> Setting | None:
    """Return the variable `name`, else the first line of ``<run>/secrets/jwt``, else None."""
    if os.environ.get(name):
        return Setting(os.environ[name], name)
    folder = run_dir()
    path = None if folder is None else folder / JWT_SECRET_FILE
    if path is None or not path.is_file():
        return None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise PlatformEnvError(f"{path}: cannot read: {error.strerror or error}") from None
    return Setting(lines[0].strip(), str(path)) if lines and lines[0].strip() else None


def run_file(file: Path) -> Path | None:
    """Return where in the run folder `file` is looked for, or None when there is no run folder."""
    folder = run_dir()
    return None if folder is None else folder / file


NO_RUN_DIR = f"no run folder to look in ({RUN_DIR_ENV} unset and not running from a checkout's .venv)"
