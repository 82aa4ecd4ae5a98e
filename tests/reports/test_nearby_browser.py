""" "Already reported nearby?" as people meet it, in headless Chromium with real intake, workflow and
tracking processes: the citizen's form comes back with the reports nearby (without JavaScript), they
follow one or send theirs anyway; the public page of a report; the tracking page of a report merged into
another. No serious accessibility violation; screenshots at 390 and 1280 px, in French and Arabic (in
`tests.browser.SCREENSHOTS`, to be looked at)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from devtools.demo import APPLICANT
from tests.browser import SCREENSHOTS, blocking_violations
from tests.builders import make_case
from tests.conftest import Tokens
from tests.processes import Services, running_services
from tests.reports.places import HERE, REPORT, at, north_of

pytestmark = pytest.mark.browser
WIDTHS = (390, 1280)


class Site(Services):
    def report(self, metres: float, **data: Any) -> dict[str, Any]:
        body = make_case(REPORT, location=at(north_of(HERE, metres)), **data)
        answer = httpx.post(f"{self.intake}/v1/cases", json=body, timeout=10)
        assert answer.status_code == 201, answer.text
        case: dict[str, Any] = answer.json()
        return case


@pytest.fixture(scope="module")
def site(pg_server: Any, issuer: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The three services on one database, with reports already made around the place of the form."""
    from devtools.servers import NatsServer

    root = tmp_path_factory.mktemp("nearby-browser")
    nats = NatsServer(store=root / "nats").start()
    database_url = pg_server.create_database("nearby_browser")
    try:
        with running_services(database_url, nats.url, logs=root, issuer=issuer) as urls:
            agent = Tokens(issuer)("agent", "voirie")
            yield Site(urls["intake"], urls["tracking"], urls["workflow"], agent)
    finally:
        nats.stop(kill=True)


@pytest.fixture(scope="module")
def reports(site: Site) -> dict[str, dict[str, Any]]:
    original = site.report(20)
    made = {"original": original, "other": site.report(40), "duplicate": site.report(35)}
    site.act(original["case_id"], "triage")
    site.act(made["duplicate"]["case_id"], "mark-duplicate", duplicate_of=original["case_id"])
    _settled(site, made)
    return made


def _settled(site: Site, made: dict[str, dict[str, Any]]) -> None:
    """intake knows the duplicate is closed and the original triaged; tracking shows the merge."""
    nearby = f"{site.intake}/v1/reports/nearby"
    params: dict[str, str | float] = {"procedure": REPORT, "category": "eclairage", **at(HERE)}
    track = f"{site.tracking}/v1/track/{made['duplicate']['tracking_code']}"
    deadline = time.monotonic() + 20
    while True:
        shown = httpx.get(nearby, params=params, timeout=5).json()["reports"]
        followed = httpx.get(track, timeout=5).json().get("followed_in")
        if (
            len(shown) == 2
            and shown[0]["step"] == "to-qualify"
            and followed
            and followed["step"] == "to-qualify"
        ):
            return
        assert time.monotonic() < deadline, (shown, followed)
        time.sleep(0.2)


def _page(browser: Browser, *, javascript: bool = True) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=javascript)
    context.set_default_timeout(10000)
    return context.new_page()


def _fill(page: Page) -> None:
    page.locator("input[name='data.category'][value='eclairage']").check()
    page.locator("[name='data.location.address']").fill("3 place du Marché")
    page.locator("[name='data.description']").fill("Le lampadaire ne s'allume plus depuis lundi.")
    for name in ("name", "email"):
        page.locator(f"[name='applicant.{name}']").fill(APPLICANT[name])


def _screenshots(page: Page, name: str) -> None:
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=SCREENSHOTS / f"reports-{name}-{width}.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width, f"{name} scrolls sideways"
    page.set_viewport_size({"width": 1280, "height": 900})


def test_without_javascript_the_citizen_sees_the_reports_nearby_and_sends_theirs_anyway(
    site: Site, reports: dict[str, dict[str, Any]], browser: Browser
) -> None:
    page = _page(browser, javascript=False)
    page.goto(f"{site.intake}/demarches/{REPORT}?lang=fr")
    _fill(page)
    with page.expect_navigation() as sent:
        page.locator("form[method=post] .form-actions button").click()
    assert sent.value is not None and sent.value.status == 200
    panel = page.get_by_role("region", name="Déjà signalé à proximité ?")
    expect(panel).to_contain_text("2 signalements du même type, encore ouverts")
    expect(panel.get_by_role("link", name="Suivre ce signalement")).to_have_count(2)
    expect(page.locator("#data-description")).to_have_value("Le lampadaire ne s'allume plus depuis lundi.")
    with page.expect_navigation() as receipt:
        panel.get_by_role("button", name="C'est un autre problème : envoyer mon signalement").click()
    assert receipt.value is not None and receipt.value.status == 200
    expect(page.get_by_role("heading", level=1)).to_have_text("Demande envoyée")
    page.context.close()


@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_the_panel_the_public_page_and_the_duplicates_page_look_right(
    site: Site, reports: dict[str, dict[str, Any]], browser: Browser, lang: str
) -> None:
    page = _page(browser)
    found: dict[str, list[str]] = {}
    page.goto(f"{site.intake}/demarches/{REPORT}?lang={lang}")
    _fill(page)
    with page.expect_navigation():
        page.locator("form[method=post] .form-actions button").click()
    expect(page.locator(".nearby")).to_be_focused()
    found["panel"] = blocking_violations(page)
    _screenshots(page, f"panel-{lang}")

    with page.expect_navigation():
        page.locator(f".nearby a[href*='{reports['original']['case_id']}']").click()
    assert page.url.startswith(f"{site.tracking}/signalements/{reports['original']['case_id']}")
    expect(page.locator(".status-label")).to_have_text({"fr": "En cours d'examen", "ar": "قيد الدراسة"}[lang])
    found["public page"] = blocking_violations(page)
    _screenshots(page, f"public-{lang}")

    page.goto(f"{site.tracking}/suivi/{reports['duplicate']['tracking_code']}?lang={lang}")
    expect(page.locator(".followed-in")).to_contain_text(reports["original"]["case_id"])
    found["duplicate"] = blocking_violations(page)
    _screenshots(page, f"duplicate-{lang}")
    assert not any(found.values()), found
    page.context.close()
