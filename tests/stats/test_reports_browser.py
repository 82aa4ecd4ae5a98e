"""The street reports' page as a reader meets it: a real stats process folding a year of reports, driven
from headless Chromium without JavaScript, checked with axe, and photographed at a phone's and a desktop's
width, in French and in Arabic (right to left)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from shared.events import EventData
from tests.browser import SCREENSHOTS
from tests.conftest import Env
from tests.stats.conftest import DESKTOP, PHONE, desktop_page, folded_stats, serious_violations
from tests.stats.test_reports import DAY, Move, Report, done_after, publish

pytestmark = pytest.mark.browser

# How busy each district is: the north is quiet (its figures are mostly withheld), the centre is busy.
WEIGHTS = {"centre": 10, "nord": 1, "sud": 5, "est": 4, "ouest": 3}
CATEGORIES = ["eclairage", "nid-de-poule", "proprete", "depot-sauvage", "graffiti", "mobilier-urbain"]


def a_year_of_reports() -> list[EventData]:
    """About 25 reports a month for a year: most done in 2 to 50 days, some transferred, rejected or
    duplicates, the recent ones open; two thirds of the reporters answer, most say it is fixed, and a
    "not fixed" reopens the report."""
    rng, now = random.Random(11), datetime.now(UTC)
    events: list[EventData] = []
    for month in range(12, 0, -1):
        start = now - month * 30 * DAY
        for _ in range(rng.randint(20, 30)):
            submitted = start + timedelta(hours=rng.randint(0, 29 * 24))
            district = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
            slow = 2 if district == "sud" else 1
            r = Report(submitted, category=rng.choice(CATEGORIES), district=district)
            events += r.submitted_events()
            fate, days = rng.random(), rng.randint(2, 35) * slow
            if submitted + (days + 1) * DAY > now:
                continue
            if fate < 0.1:
                events.append(r.move(Move(DAY, "transferred", "closed", action="transfer")))
            elif fate < 0.18:
                events += [r.move(Move(DAY, "to-qualify")), r.move(Move(3 * DAY, "rejected", "rejected"))]
            elif fate < 0.25:
                events.append(r.move(Move(DAY, "duplicate", "closed", action="mark-duplicate")))
            else:
                events += done_after(r, days)
                if submitted + (days + 30) * DAY < now and rng.random() < 0.66:
                    fixed = rng.random() < 0.8
                    events += [r.asked((days + 28) * DAY), r.answered((days + 29) * DAY, fixed=fixed)]
                    if not fixed:
                        events.append(
                            r.move(Move((days + 29) * DAY, "to-qualify", actor="citizen", action="reopen"))
                        )
    return events


@pytest.fixture
def stats_url(env: Env, tmp_path: Path) -> Iterator[str]:
    """A stats process that has folded a year of street reports."""
    yield from folded_stats(env, tmp_path, a_year_of_reports(), publish)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page without JavaScript: the form works without it."""
    yield from desktop_page(browser, java_script_enabled=False)


def test_a_reader_chooses_a_figure_without_javascript(stats_url: str, page: Page) -> None:
    page.goto(f"{stats_url}/statistiques?lang=fr")
    page.get_by_role("link", name="Signalements dans l'espace public : la carte par quartier").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Signalements dans l'espace public : ce que la ville en fait"
    )
    expect(page.locator("svg.district-map path")).to_have_count(5)
    page.get_by_label("Chiffre montré sur la carte", exact=True).select_option("confirmed_fixed")
    page.get_by_label("Catégorie", exact=True).select_option("eclairage")
    page.get_by_role("button", name="Afficher").click()
    expect(
        page.get_by_role("heading", level=2, name="Part confirmée réglée par l'auteur, par quartier")
    ).to_be_visible()
    expect(
        page.get_by_role("img", name="Carte des quartiers : Part confirmée réglée", exact=False)
    ).to_be_visible()
    # The map's own table says the same, beside it.
    expect(page.locator("#figure-table tbody tr")).to_have_count(6)


def test_the_page_is_accessible_and_looks_right_on_a_phone_and_a_desktop(
    stats_url: str, browser: Browser
) -> None:
    context = browser.new_context(locale="fr-FR", viewport={"width": DESKTOP, "height": 900})
    page = context.new_page()  # axe runs in the page: JavaScript on
    found = {}
    for lang in ("fr", "ar"):
        page.set_viewport_size({"width": DESKTOP, "height": 900})
        page.goto(f"{stats_url}/statistiques/signalements?lang={lang}")
        found[f"{lang} time to done"] = serious_violations(page)
        page.screenshot(path=SCREENSHOTS / f"stats-reports-desktop-{lang}.png", full_page=True)
        page.set_viewport_size({"width": PHONE, "height": 844})
        page.goto(f"{stats_url}/statistiques/signalements?lang={lang}&figure=within_commitment")
        page.screenshot(path=SCREENSHOTS / f"stats-reports-phone-{lang}.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE, "the page scrolls sideways"
        box = page.locator("svg.district-map").bounding_box()
        assert box is not None and box["width"] <= PHONE - 30
        page.goto(f"{stats_url}/statistiques/signalements?lang={lang}&figure=received&category=graffiti")
        found[f"{lang} received"] = serious_violations(page)
        page.screenshot(path=SCREENSHOTS / f"stats-reports-phone-{lang}-withheld.png", full_page=True)
    context.close()
    assert not any(found.values()), found
