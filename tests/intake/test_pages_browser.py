"""A citizen does each procedure from intake's pages in headless Chromium (real intake and tracking
processes): fills the form, makes a mistake, corrects it, sends it, reads the tracking code on the receipt
and follows the case on tracking's page. Plus axe on every kind of page, a keyboard-only journey, and
screenshots at phone and desktop widths (in `tests.browser.SCREENSHOTS`, to be looked at)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from devtools.demo import APPLICANT, VALID_DATA
from shared.i18n import languages
from shared.procedures import FieldType, load_catalogue
from shared.settings import DEFAULT_PROCEDURES_DIR
from tests.browser import SCREENSHOTS, blocking_violations
from tests.conftest import Env
from tests.processes import running_services

pytestmark = pytest.mark.browser
CATALOGUE = load_catalogue(DEFAULT_PROCEDURES_DIR)
CODE = re.compile(r"^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}-[0-9A-Z]$")


@dataclass
class Site:
    intake: str
    tracking: str
    logs: Path

    def assert_never_logged(self, code: str) -> None:
        forms = {code, code.replace("-", ""), code.lower(), code.lower().replace("-", "")}
        for log in self.logs.glob("*.log"):
            text = log.read_text(errors="replace")
            assert not [f for f in forms if f in text], f"the tracking code leaked into {log.name}"


@pytest.fixture
def site(env: Env, tmp_path: Path) -> Iterator[Site]:
    logs = tmp_path / "logs"
    logs.mkdir()
    with running_services(env.database_url, env.nats_url, logs=logs) as urls:
        yield Site(intake=urls["intake"], tracking=urls["tracking"], logs=logs)


def fill(page: Page, code: str, data: dict[str, Any], applicant: dict[str, str] | None = None) -> None:
    """Types a case's answers into its form, as a person with a mouse and a keyboard would."""
    procedure = CATALOGUE.latest(code)
    assert procedure is not None
    for f in procedure.fields:
        value = data.get(f.name)
        if value is None:
            continue
        if f.type is FieldType.CHOICE:
            page.locator(f"input[name='data.{f.name}'][value='{value}']").check()
        elif f.type is FieldType.LOCATION:
            for part, v in value.items():
                page.locator(f"[name='data.{f.name}.{part}']").fill(str(v))
        else:
            page.locator(f"[name='data.{f.name}']").fill(str(value))
    for name, value in {**APPLICANT, **(applicant or {})}.items():
        if name == "language":
            page.locator(f"input[name='applicant.language'][value='{value}']").check()
        else:
            page.locator(f"[name='applicant.{name}']").fill(value)


def send(page: Page) -> int:
    with page.expect_navigation() as navigation:
        page.locator("form[method=post] button[type=submit]").click()
    response = navigation.value
    assert response is not None
    return response.status


# A mistake per procedure, what the summary then says, and how the citizen corrects it.
MISTAKES: dict[str, tuple[dict[str, Any], str, dict[str, Any]]] = {
    "permis-construire": (
        {"cadastral_reference": "parcelle 12"},
        "Référence cadastrale : Le format n'est pas valide",
        {"cadastral_reference": "AB 123"},
    ),
    "declaration-prealable": (
        {"cadastral_reference": ""},
        "Référence cadastrale : Ce champ est obligatoire.",
        {"cadastral_reference": "C 42"},
    ),
    "acte-naissance": (
        {"birth_date": "2090-05-17"},
        "Date de naissance : La date ne peut pas être dans le futur.",
        {"birth_date": "1990-05-17"},
    ),
    "carte-stationnement-resident": (
        {"vehicle_registration": "ab123cd"},
        "Immatriculation du véhicule : Le format n'est pas valide",
        {"vehicle_registration": "AB-123-CD"},
    ),
    "signalement-voirie": (
        {"description": ""},
        "Description : Ce champ est obligatoire.",
        {"description": "Le lampadaire devant le numéro 3 ne s'allume plus."},
    ),
}


@pytest.mark.parametrize("code", sorted(MISTAKES))
def test_a_citizen_fills_makes_a_mistake_corrects_it_sends_and_follows_the_case(
    site: Site, page: Page, code: str
) -> None:
    procedure = CATALOGUE.latest(code)
    assert procedure is not None
    wrong, said, right = MISTAKES[code]
    page.goto(f"{site.intake}/")
    page.get_by_role("link", name=procedure.title.in_("fr"), exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(procedure.title.in_("fr"))

    fill(page, code, {**VALID_DATA[code], **wrong})
    assert send(page) == 422

    summary = page.get_by_role("alert")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text(said)
    name = next(iter(wrong))
    field = page.locator(f"[name='data.{name}']")
    expect(field).to_have_value(str(wrong[name]))  # what was typed is still there
    expect(page.locator("#applicant-email")).to_have_value(APPLICANT["email"])
    summary.get_by_role("link").first.click()
    expect(field).to_be_focused()
    expect(field).to_have_attribute("aria-invalid", "true")
    field.fill(str(right[name]))
    assert send(page) == 200

    expect(page.get_by_role("heading", level=1)).to_have_text("Demande envoyée")
    tracking_code = page.locator(".receipt-code").inner_text().replace("\n", "").replace(" ", "")
    assert CODE.match(tracking_code), tracking_code
    assert tracking_code not in page.url
    page.get_by_role("link", name="Suivre mon dossier").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(procedure.title.in_("fr"))
    expect(page.locator(".status-label")).to_have_text(procedure.first_step.label.in_("fr"))
    expect(page.locator(".code")).to_have_text(tracking_code)
    site.assert_never_logged(tracking_code)


def tab_to(page: Page, element_id: str, *, presses: int = 60) -> None:
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} cannot be reached with the Tab key")


def test_a_citizen_reports_a_street_light_with_the_keyboard_only(site: Site, page: Page) -> None:
    page.goto(f"{site.intake}/demarches?lang=en")
    tab_to(page, "q")
    page.keyboard.type("street light")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("1 procedure matches")
    page.keyboard.press("Tab")  # from the search box's button onwards
    for _ in range(20):
        if page.evaluate("document.activeElement.textContent") == "Report a problem in a public space":
            break
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Report a problem in a public space")

    tab_to(page, "data-category")  # the first choice: street lighting
    page.keyboard.press("Space")
    tab_to(page, "data-location-latitude")
    page.keyboard.type("45.7578")
    page.keyboard.press("Tab")
    page.keyboard.type("4.8320")
    tab_to(page, "applicant-name")
    page.keyboard.type("Camille Martin")
    page.keyboard.press("Tab")
    page.keyboard.type("camille.martin@example.org")
    page.keyboard.press("Enter")  # sent before the description: it comes back

    summary = page.get_by_role("alert")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Description: This field is required.")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')") == "#data-description"
    page.keyboard.press("Enter")
    expect(page.locator("#data-description")).to_be_focused()
    page.keyboard.type("The street light in front of number 3 is out.")
    tab_to(page, "applicant-name")
    expect(page.locator("#applicant-name")).to_have_value("Camille Martin")
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", level=1)).to_have_text("Request sent")
    code = page.locator(".receipt-code").inner_text().replace("\n", "").replace(" ", "")
    assert CODE.match(code), code
    expect(page.get_by_role("region", name="What happens next")).to_contain_text("Report received")


LANGUAGES = [lang for lang in ("fr", "en", "ar") if lang in languages()]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_kind_of_page_has_no_serious_accessibility_violation(site: Site, page: Page, lang: str) -> None:
    found: dict[str, list[str]] = {}
    page.goto(f"{site.intake}/demarches?lang={lang}")
    found["catalogue"] = blocking_violations(page)
    page.goto(f"{site.intake}/demarches?lang={lang}&q=zzz")
    found["no result"] = blocking_violations(page)
    for code in CATALOGUE.codes():
        page.goto(f"{site.intake}/demarches/{code}?lang={lang}")
        found[code] = blocking_violations(page)
    page.goto(f"{site.intake}/demarches/permis-construire?lang={lang}")
    fill(
        page,
        "permis-construire",
        {**VALID_DATA["permis-construire"], "floor_area_m2": "beaucoup"},
        {"email": "x@"},
    )
    assert send(page) == 422
    found["errors"] = blocking_violations(page)
    page.locator("[name='data.floor_area_m2']").fill("120")
    page.locator("#applicant-email").fill(APPLICANT["email"])
    assert send(page) == 200
    found["receipt"] = blocking_violations(page)
    assert not any(found.values()), found


def screenshots(page: Page, name: str) -> None:
    """The page at desktop width then at 375 px, full length; it never scrolls sideways on a phone."""
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=SCREENSHOTS / f"intake-{name}-desktop.png", full_page=True)
    page.set_viewport_size({"width": 375, "height": 800})
    page.screenshot(path=SCREENSHOTS / f"intake-{name}-phone.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375, f"{name} scrolls sideways on a phone"
    page.set_viewport_size({"width": 1280, "height": 900})


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_pages_look_right_on_a_desktop_and_a_phone(site: Site, page: Page, lang: str) -> None:
    page.goto(f"{site.intake}/demarches?lang={lang}")
    direction = "rtl" if lang == "ar" else "ltr"
    assert page.evaluate("getComputedStyle(document.body).direction") == direction
    screenshots(page, f"catalogue-{lang}")
    page.goto(f"{site.intake}/demarches/signalement-voirie?lang={lang}")
    screenshots(page, f"form-{lang}")
    fill(page, "signalement-voirie", {**VALID_DATA["signalement-voirie"], "description": ""}, {"email": "x@"})
    assert send(page) == 422
    screenshots(page, f"errors-{lang}")
    page.locator("#data-description").fill("Le lampadaire ne s'allume plus.")
    page.locator("#applicant-email").fill(APPLICANT["email"])
    assert send(page) == 200
    screenshots(page, f"receipt-{lang}")
    # The code reads in large groups, left to right whatever the page's direction.
    groups = page.locator(".receipt-code .group")
    expect(groups).to_have_count(5)
    xs = [groups.nth(i).bounding_box()["x"] for i in range(5)]  # type: ignore[index]
    assert xs == sorted(xs), "the code's groups are not in reading order"
