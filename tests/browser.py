"""Headless Chromium for the tests that look at pages as people do: the system's Chromium (`.ci/run`
installs it; Playwright's own browser download is not used), axe's blocking violations, where screenshots go.

Its `playwright`, `browser` and `page` fixtures reach every test (`pytest_plugins` in conftest.py); a test
module needing another page keeps its own `page`, a folder's conftest.py may wait less (`page_timeout_ms`)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BLOCKING_IMPACTS = ("serious", "critical")
# Where the screenshots go, to be looked at (SUIVI_SCREENSHOTS to keep them somewhere else).
SCREENSHOTS = Path(os.environ.get("SUIVI_SCREENSHOTS", tempfile.gettempdir()))


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (see .ci/run)")
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page_timeout_ms() -> int:
    """How long `page` waits for what a test asks of it."""
    return 10_000


@pytest.fixture
def page(browser: Browser, page_timeout_ms: int) -> Iterator[Page]:
    """A page in French at desktop width, in a context of its own."""
    context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(page_timeout_ms)
    yield context.new_page()
    context.close()


def blocking_violations(page: Page, within: str | None = None) -> list[str]:
    """axe's serious and critical violations on the page, or in its part `within` (a CSS selector): one
    line each, saying where."""
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in Axe().run(page, context=within).response["violations"]
        if v["impact"] in BLOCKING_IMPACTS
    ]
