"""The tracking page as a citizen meets it: real intake and tracking processes, driven from headless Chromium.

Only the system Chromium is used (`/usr/bin/chromium`); Playwright's own browser download is not needed.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.browser import BLOCKING_IMPACTS, SCREENSHOTS
from tests.builders import make_case
from tests.conftest import Env, Tokens
from tests.processes import Services, running_services
from tests.tracking.test_forecast import publish_forecast

pytestmark = pytest.mark.browser


@dataclass
class Site(Services):
    logs: Path

    def submit(self) -> dict[str, Any]:
        answer = httpx.post(f"{self.intake}/v1/cases", json=make_case("permis-construire"), timeout=10)
        assert answer.status_code == 201, answer.text
        case: dict[str, Any] = answer.json()
        return case

    def ask_for_documents(self, case: dict[str, Any]) -> None:
        """An agent asks the citizen for documents, and tracking shows it is the citizen's turn."""
        for action in ("start-check", "request-documents"):
            self.act(case["case_id"], action)
        deadline = time.monotonic() + 20
        lookup = f"{self.tracking}/v1/track/{case['tracking_code']}"
        while httpx.get(lookup, timeout=5).json()["status"]["turn"] != "citizen":
            assert time.monotonic() < deadline, "tracking did not show the request"
            time.sleep(0.1)

    def assert_never_logged(self, code: str) -> None:
        forms = {code, code.replace("-", ""), code.lower(), code.lower().replace("-", "")}
        for log in self.logs.glob("*.log"):
            text = log.read_text(errors="replace")
            assert not [f for f in forms if f in text], f"the tracking code leaked into {log.name}"


@pytest.fixture
def site(env: Env, tmp_path: Path, issuer: Path, tokens: Tokens) -> Iterator[Site]:
    logs = tmp_path / "logs"
    logs.mkdir()
    with running_services(env.database_url, env.nats_url, logs=logs, issuer=issuer) as urls:
        yield Site(
            intake=urls["intake"],
            tracking=urls["tracking"],
            workflow=urls["workflow"],
            agent=tokens("agent", "urbanisme"),
            logs=logs,
        )


def focus_by_tabbing(page: Page, element_id: str, *, presses: int = 10) -> None:
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} cannot be reached with the Tab key")


def mistype(code: str) -> str:
    return ("1" if code[0] != "1" else "2") + code[1:]


def test_a_citizen_opens_the_link_from_intake_then_reads_it_in_english(site: Site, page: Page) -> None:
    case = site.submit()

    page.goto(case["tracking_url"])
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", level=1)).to_have_text("Permis de construire une maison individuelle")
    expect(page.locator(".status-label")).to_have_text("Dossier reçu")
    expect(page.locator("[aria-current=step]")).to_contain_text("Dossier reçu")

    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator(".status-label")).to_have_text("Application received")
    expect(page).to_have_title(re.compile(r"^Application received – Building permit for a house"))
    expect(page.get_by_role("link", name="Français")).to_have_attribute("hreflang", "fr")
    site.assert_never_logged(case["tracking_code"])


def test_a_citizen_types_the_code_loosely_using_only_the_keyboard(site: Site, page: Page) -> None:
    code = site.submit()["tracking_code"]
    page.goto(f"{site.tracking}/")

    focus_by_tabbing(page, "code")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    page.keyboard.type(code.lower().replace("-", ""))
    page.keyboard.press("Enter")

    expect(page.locator(".status-label")).to_have_text("Dossier reçu")
    expect(page.locator(".code")).to_have_text(code)
    site.assert_never_logged(code)


def test_a_mistyped_code_is_explained_and_the_field_is_marked(site: Site, page: Page) -> None:
    code = mistype(site.submit()["tracking_code"])
    page.goto(f"{site.tracking}/?lang=en")

    page.get_by_label("Tracking code").fill(code)
    with page.expect_response(lambda r: "/suivi?" in r.url) as answer:
        page.get_by_role("button", name="See my case").click()

    assert answer.value.status == 422
    expect(page).to_have_title(re.compile(r"^Error – "))
    expect(page.get_by_role("alert")).to_contain_text("looks mistyped")
    field = page.get_by_label("Tracking code")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_value(code)
    expect(field).to_have_accessible_description(re.compile("looks mistyped"))
    focus_by_tabbing(page, "code")

    page.evaluate("document.activeElement.blur()")
    page.get_by_role("alert").get_by_role("link").click()
    expect(field).to_be_focused()


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_pages_have_no_serious_accessibility_violations(site: Site, page: Page, lang: str) -> None:
    code = site.submit()["tracking_code"]
    pages = {
        "form": f"{site.tracking}/?lang={lang}",
        "result": f"{site.tracking}/suivi/{code}?lang={lang}",
        "error": f"{site.tracking}/suivi?code={mistype(code)}&lang={lang}",
    }
    axe = Axe()
    found = {}
    for name, url in pages.items():
        page.goto(url)
        violations = axe.run(page).response["violations"]
        found[name] = [
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
            for v in violations
            if v["impact"] in BLOCKING_IMPACTS
        ]
    assert not any(found.values()), found


def test_the_result_page_looks_right_on_a_desktop_and_a_phone(site: Site, page: Page, tmp_path: Path) -> None:
    code = site.submit()["tracking_code"]
    page.goto(f"{site.tracking}/suivi/{code}?lang=fr")
    expect(page.locator(".status-label")).to_have_text("Dossier reçu")

    page.screenshot(path=tmp_path / "result-desktop.png", full_page=True)
    page.set_viewport_size({"width": 375, "height": 800})
    page.screenshot(path=tmp_path / "result-phone.png", full_page=True)
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 375, "the page scrolls sideways on a phone"
    assert (tmp_path / "result-desktop.png").stat().st_size > 10_000


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_a_case_waiting_for_the_citizen_says_how_to_reply_accessibly(
    site: Site, page: Page, lang: str
) -> None:
    case = site.submit()
    site.ask_for_documents(case)
    page.goto(f"{site.tracking}/suivi/{case['tracking_code']}?lang={lang}")
    on_hold = {"fr": "Le délai est suspendu", "en": "The deadline is on hold"}[lang]
    assert on_hold in page.content()
    assert page.get_by_role(
        "heading", name={"fr": "Comment répondre", "en": "How to reply"}[lang]
    ).is_visible()
    violations = [v for v in Axe().run(page).response["violations"] if v["impact"] in BLOCKING_IMPACTS]
    assert not violations, [f"{v['id']}: {v['help']}" for v in violations]


def test_the_forecast_reads_as_two_dates_and_how_they_are_computed(site: Site, page: Page, env: Env) -> None:
    steps = {"received": {"n": 42, "p50_days": 30, "p90_days": 51, "usual_days": 2.4, "usual_n": 42}}
    with ThreadPoolExecutor(1) as thread:  # the browser tests run in the session's event loop already
        thread.submit(asyncio.run, publish_forecast(env, "permis-construire", steps)).result()
    code = site.submit()["tracking_code"]
    page.goto(f"{site.tracking}/suivi/{code}?lang=fr")
    forecast = page.get_by_role("region", name="Quand le dossier sera probablement décidé")
    expect(forecast).to_contain_text("42 dossiers semblables")
    assert forecast.locator("time").count() == 2
    expect(page.locator(".step-current .step-duration")).to_contain_text("(mesuré sur les dossiers récents)")
    violations = [v for v in Axe().run(page).response["violations"] if v["impact"] in BLOCKING_IMPACTS]
    assert not violations, [f"{v['id']}: {v['help']}" for v in violations]
    page.screenshot(path=SCREENSHOTS / "forecast-desktop.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=SCREENSHOTS / "forecast-phone.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
