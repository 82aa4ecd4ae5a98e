"""Headless Chromium for the tests that look at pages as people do: the system's Chromium (`.ci/run`
installs it; Playwright's own browser download is not used), axe's blocking impacts, where screenshots go.

Its `playwright` and `browser` fixtures reach every test (`pytest_plugins` in conftest.py); a test module keeps
its own `page`."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

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
