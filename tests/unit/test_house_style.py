"""The house rules run with the tests: ruff (lint and format) and mypy (strict) over every package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SOURCES = sorted(p for p in (*REPO.glob("libs/*/src"), *REPO.glob("services/*/src"), REPO / "cli" / "src"))


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a tool from the test session's environment at the repository root."""
    return subprocess.run(
        [str(BIN / argv[0]), *argv[1:]], cwd=REPO, capture_output=True, text=True, env=env, timeout=600
    )


def packages() -> list[str]:
    """Return the import names of the repository's packages (one per src folder)."""
    return sorted(
        child.name for src in SOURCES for child in src.iterdir() if (child / "__init__.py").is_file()
    )


def test_ruff_finds_no_lint_errors() -> None:
    done = run("ruff", "check", "--no-cache", ".")

    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_leaves_every_file_as_it_is() -> None:
    done = run("ruff", "format", "--check", "--no-cache", ".")

    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_finds_no_errors_in_any_package() -> None:
    env = {**os.environ, "MYPYPATH": os.pathsep.join(str(src) for src in SOURCES)}
    targets = [arg for name in packages() for arg in ("-p", name)]

    done = run("mypy", "--cache-dir", str(REPO / ".mypy_cache"), *targets, env=env)

    assert len(targets) == 2 * len(SOURCES)
    assert done.returncode == 0, done.stdout + done.stderr
