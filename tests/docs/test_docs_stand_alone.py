"""The repository's documentation refers only to files inside the repository, and they exist."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")  # [text](target) and [text](target#anchor)
QUOTED_MD = re.compile(r"`([^`\s]+\.md)`")  # `docs/architecture.md`


def _tracked_markdown() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "*.md"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return [REPO / name for name in listed if (REPO / name).is_file()]


def _references(page: Path) -> list[str]:
    text = page.read_text()
    targets = LINK.findall(text) + QUOTED_MD.findall(text)
    return [t for t in targets if not re.match(r"^[a-z]+://|^mailto:", t)]


def _resolves_inside_the_repository(page: Path, target: str) -> bool:
    for base in (page.parent, REPO):
        path = (base / target).resolve()
        if path.is_relative_to(REPO) and path.exists():
            return True
    return False


def test_every_file_a_markdown_page_names_is_inside_the_repository_and_exists() -> None:
    pages = _tracked_markdown()
    broken = [
        f"{page.relative_to(REPO)}: {target}"
        for page in pages
        for target in _references(page)
        if not _resolves_inside_the_repository(page, target)
    ]

    assert pages, "no tracked markdown found"
    assert broken == []
