"""Print the sandbox image's content hash: SHA-256 over libs/core sources, the pins and the recipe.

The image carries it as the label ``backtest.content-hash``; a different value means the image is stale.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LABEL = "backtest.content-hash"


def hashed_files(repo: Path = REPO) -> Iterator[Path]:
    """Yield, in a stable order, every file whose content goes into the image."""
    core = repo / "libs" / "core"
    yield core / "pyproject.toml"
    yield from sorted(
        p
        for p in (core / "src").rglob("*")
        if p.is_file() and p.suffix in {".py", ".pyi", ".typed", ".json", ".c", ".h"}
    )
    yield repo / "deploy" / "sandbox" / "requirements.txt"
    yield repo / "deploy" / "sandbox" / "build_image.sh"


def content_hash(repo: Path = REPO) -> str:
    """Return the hex SHA-256 of the relative paths and bytes of :func:`hashed_files`."""
    digest = hashlib.sha256()
    for path in hashed_files(repo):
        digest.update(path.relative_to(repo).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


if __name__ == "__main__":
    sys.stdout.write(content_hash() + "\n")
