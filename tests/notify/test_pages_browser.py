"""What a citizen sees of notify: the page behind the link in each message, and the e-mail itself, in
headless Chromium, axe-clean, at phone and desktop width."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page

from devtools import dev_issuer
from services.notify.content import render
from services.notify.domain import Kind
from services.notify.sender import stop_token
from services.notify.settings import DEVELOPMENT_LINK_SECRET
from shared.procedures import load_catalogue
from shared.settings import DEFAULT_PROCEDURES_DIR
from tests.browser import BLOCKING_IMPACTS, SCREENSHOTS
from tests.conftest import Env
from tests.processes import ServiceProcess, service_env

pytestmark = pytest.mark.browser


@pytest.fixture
def notify_url(env: Env, issuer: Path, tmp_path: Path) -> Iterator[str]:
    variables = service_env(
        env.database_url,
        env.nats_url,
        OIDC_ISSUER=dev_issuer.DEV_ISSUER,
        OIDC_JWKS_FILE=str(issuer / dev_issuer.JWKS_FILE),
    )
    notify = ServiceProcess("services.notify.app", env=variables, log_dir=tmp_path).start()
    yield notify.url
    notify.stop()


def blocking(page: Page) -> list[dict[str, Any]]:
    return [v for v in Axe().run(page).response["violations"] if v["impact"] in BLOCKING_IMPACTS]


def shoot(page: Page, name: str) -> None:
    for width, height, tag in ((1280, 800, "desktop"), (390, 844, "phone")):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=SCREENSHOTS / f"notify-{name}-{tag}.png", full_page=True)


def test_the_stop_link_asks_then_stops_the_cases_messages(browser: Browser, notify_url: str) -> None:
    token = stop_token(uuid.uuid4(), DEVELOPMENT_LINK_SECRET)
    page = browser.new_page()
    page.goto(f"{notify_url}/notifications/stop/{token}?lang=fr")
    assert page.get_by_role("heading", level=1).inner_text() == "Ne plus recevoir de messages pour ce dossier"
    assert blocking(page) == []
    shoot(page, "stop-ask")

    page.get_by_role("button", name="Arrêter les messages").click()
    assert "vous ne recevrez plus de messages" in page.get_by_role("status").inner_text()
    assert blocking(page) == []
    shoot(page, "stop-done")

    page.goto(f"{notify_url}/notifications/stop/{token[:-3]}abc?lang=en")
    assert "This link is not valid" in page.inner_text("main")
    page.close()


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_receipt_e_mail_is_readable_and_axe_clean(browser: Browser, lang: str) -> None:
    procedure = load_catalogue(DEFAULT_PROCEDURES_DIR).latest("permis-construire")
    assert procedure is not None
    rendered = render(
        kind=Kind.RECEIVED,
        lang=lang,
        procedure=procedure,
        context={"step": "received", "legal_deadline": "2027-02-01", "at": "2026-12-01T10:00:00+01:00"},
        tracking_code="K7QM-2XPD-9RTA-HF3W-Z",
        tracking_url=f"https://mairie.example/suivi/K7QM-2XPD-9RTA-HF3W-Z?lang={lang}",
        unsubscribe_url="https://mairie.example/notifications/stop/abc",
    )
    page = browser.new_page()
    page.set_content(rendered.html)
    assert page.locator("strong").first.inner_text() == "K7QM-2XPD-9RTA-HF3W-Z"
    assert blocking(page) == []
    shoot(page, f"receipt-{lang}")
    page.close()
