"""The engine build identity: its version and a digest of its source, so no cache outlives a code change."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from backtest_core import __version__

SOURCE_SUFFIXES = frozenset({".py", ".c", ".h"})


@cache
def engine_build_id() -> str:
    """Return "<version>+<12 hex digits of SHA-256 over this package's .py, .c and .h files>"."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in SOURCE_SUFFIXES):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:12]}"
