"""The dashboard as a reader meets it: a real stats process folding a year and more of permits, driven from
headless Chromium, checked with axe, and photographed at a phone's and a desktop's width.

Only the system Chromium is used (`/usr/bin/chromium`); Playwright's own browser download is not needed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from shared.events import EventData
from shared.events.intake import CaseRated
from tests.browser import SCREENSHOTS
from tests.conftest import Env
from tests.stats.conftest import PHONE, desktop_page, folded_stats, serious_violations
from tests.stats.test_figures import DAY, PROCEDURE, Case, publish

pytestmark = pytest.mark.browser


def fourteen_months() -> list[EventData]:
    """About a dozen permits a month for fourteen months: most decided in 2 to 15 weeks (some after
    waiting for documents, a few past the legal deadline), the recent ones still open, half of the
    decided ones rated."""
    rng, now = random.Random(7), datetime.now(UTC)
    events: list[EventData] = []
    for month in range(14, 0, -1):
        start = now - month * 30 * DAY
        for _ in range(rng.randint(8, 14)):
            submitted = start + timedelta(hours=rng.randint(0, 29 * 24))
            channel = rng.choices(["web", "counter", "mail"], weights=[7, 2, 1])[0]
            case = Case(submitted, district=rng.choice(["centre", "est", "ouest"]), channel=channel)
            waited = rng.choice([0, 0, 0, 5, 12]) * DAY
            decided_after = waited + rng.randint(14, 105) * DAY
            moves = [(DAY, "completeness-check", None, False)]
            if waited:
                moves += [
                    (2 * DAY, "documents-requested", None, True),
                    (2 * DAY + waited, "completeness-check", None, False),
                ]
            moves.append((3 * DAY + waited, "review", None, False))
            if submitted + decided_after < now:
                outcome = "accepted" if rng.random() < 0.8 else "rejected"
                moves.append((decided_after, outcome, outcome, False))
            events += case.events(*moves)
            if len(moves) > 1 and moves[-1][2] and rng.random() < 0.5:
                rating = rng.choices([1, 2, 3, 4, 5], weights=[1, 1, 2, 4, 4])[0]
                rated_at = submitted + decided_after + DAY
                events.append(
                    CaseRated(case_id=case.case_id, rating=rating, rated_at=rated_at, with_comment=False)
                )
    return events


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    yield from desktop_page(browser)


@pytest.fixture
def stats_url(env: Env, tmp_path: Path) -> Iterator[str]:
    """A stats process that has folded fourteen months of permits."""
    yield from folded_stats(env, tmp_path, fourteen_months(), publish)


def open_every_table(page: Page) -> None:
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true })")


def test_the_dashboard_reads_well_and_accessibly_in_both_languages(stats_url: str, page: Page) -> None:
    found = {}
    for lang in ("fr", "en"):
        page.goto(f"{stats_url}/statistiques?procedure={PROCEDURE}&lang={lang}")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        found[f"{lang} charts"] = serious_violations(page)
        open_every_table(page)
        found[f"{lang} tables"] = serious_violations(page)
        page.goto(f"{stats_url}/statistiques?procedure=acte-naissance&months=24&lang={lang}")
        found[f"{lang} empty"] = serious_violations(page)
    assert not any(found.values()), found


def test_a_reader_picks_a_procedure_and_a_period_without_javascript(stats_url: str, browser: Browser) -> None:
    context = browser.new_context(locale="fr-FR", java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{stats_url}/")
    page.get_by_role("link", name="Permis de construire une maison individuelle").click()
    expect(
        page.get_by_role("heading", level=2, name="Permis de construire une maison individuelle")
    ).to_be_visible()
    page.get_by_role("link", name="24 derniers mois").click()
    expect(page.get_by_role("link", name="24 derniers mois")).to_have_attribute("aria-current", "page")
    chart = page.get_by_role("img", name="Délai de décision en jours", exact=False).first
    expect(chart).to_be_visible()
    page.get_by_text("Voir les données du graphique (tableau)").first.click()
    table = page.get_by_role("table").first
    expect(table).to_be_visible()
    expect(table.get_by_role("rowheader")).to_have_count(24)
    context.close()


def test_the_dashboard_looks_right_on_a_phone_and_a_desktop(stats_url: str, page: Page) -> None:
    page.goto(f"{stats_url}/statistiques?procedure={PROCEDURE}&lang=fr")
    page.screenshot(path=SCREENSHOTS / "stats-dashboard-desktop.png", full_page=True)
    open_every_table(page)
    page.screenshot(path=SCREENSHOTS / "stats-dashboard-desktop-tables.png", full_page=True)
    page.set_viewport_size({"width": PHONE, "height": 844})
    page.goto(f"{stats_url}/statistiques?procedure={PROCEDURE}&lang=en")
    page.screenshot(path=SCREENSHOTS / "stats-dashboard-phone.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE, "the page scrolls sideways"
    # On a phone, the narrow drawing of each chart is the one shown, and it fits.
    narrow = page.locator(".chart-narrow svg").first
    expect(narrow).to_be_visible()
    expect(page.locator(".chart-wide svg").first).to_be_hidden()
    box = narrow.bounding_box()
    assert box is not None and box["width"] <= PHONE - 30
    assert httpx.get(f"{stats_url}/static-stats/stats.css", timeout=5).status_code == 200
