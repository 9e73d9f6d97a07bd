"""Debian's chromium driven by Playwright through its executable path (no browser download), for the
dashboard's end-to-end tests; screenshots go to test-artifacts/web/ for a person to look at."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "web"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000


def chromium_path() -> str:
    """The machine's chromium (scripts/setup installs Debian's), or fail saying how to get it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("no chromium on PATH: scripts/setup installs Debian's chromium", pytrace=False)
    return found


def build_dashboard() -> None:
    """Build web/dist from the checked-out sources unless it already is (web/build-if-stale.sh)."""
    done = subprocess.run(["bash", str(REPO / "web" / "build-if-stale.sh")], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"the dashboard did not build:\n{done.stdout}\n{done.stderr}", pytrace=False)


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless chromium (Playwright gives it a fresh temporary profile); closed with all it opened."""
    playwright: Playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=CHROMIUM_ARGS,
        )
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()


def sign_in(browser: Browser, base_url: str, user: str, password: str) -> Page:
    """A new page of a fresh browser context, signed in through the dashboard's sign-in form."""
    context = browser.new_context(
        base_url=base_url, viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto("/#/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("#runs")
    return page


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/web/ and print where it is."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


INK_JS = """(selector) => {
  let ink = 0;
  for (const canvas of document.querySelectorAll(selector + ' canvas')) {
    if (!canvas.width || !canvas.height) continue;
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < data.length; i += 4) {
      const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
      if (a > 0 && (Math.abs(r - g) > 40 || Math.abs(g - b) > 40 || Math.abs(r - b) > 40)) ink++;
    }
  }
  return ink;
}"""


def coloured_pixels(page: Page, selector: str) -> int:
    """How many pixels of the canvases under `selector` are coloured (not white, grey or black)."""
    return int(page.evaluate(INK_JS, selector))
