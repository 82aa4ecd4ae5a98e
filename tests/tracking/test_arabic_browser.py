"""The tracking pages in Arabic, written right to left: the proof that a language unlike French reads right
(`<html lang="ar" dir="rtl">`, the layout mirrored, the tracking code still read left to right), in headless
Chromium against real intake, workflow and tracking processes."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser import SCREENSHOTS, blocking_violations
from tests.tracking.test_web_browser import Site, mistype, site  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser
# Whether an element's text is drawn left to right: its first character left of its last.
FIRST_CHARACTER_ON_THE_LEFT = """element => {
  const text = element.firstChild, range = document.createRange();
  range.setStart(text, 0); range.setEnd(text, 1);
  const first = range.getBoundingClientRect().left;
  range.setStart(text, text.length - 1); range.setEnd(text, text.length);
  return first < range.getBoundingClientRect().left;
}"""


def _reads_right_to_left(page: Page) -> None:
    html = page.locator("html")
    expect(html).to_have_attribute("lang", "ar")
    expect(html).to_have_attribute("dir", "rtl")
    heading = page.get_by_role("heading", level=1)
    assert heading.evaluate("h => getComputedStyle(h).direction") == "rtl"
    # The heading starts on the right: its right edge is that of the main column's content.
    column_right = page.locator("main").evaluate(
        "m => m.getBoundingClientRect().right - parseFloat(getComputedStyle(m).paddingRight)"
    )
    box = heading.bounding_box()
    assert box is not None and abs(box["x"] + box["width"] - column_right) < 2, (box, column_right)


def test_the_arabic_pages_read_right_to_left_with_no_serious_accessibility_violation(
    site: Site,  # noqa: F811
    page: Page,
) -> None:
    case = site.submit()
    code = case["tracking_code"]

    page.goto(f"{site.tracking}/suivi/{code}?lang=ar")
    _reads_right_to_left(page)
    # The French term is isolated left to right (U+2066 ... U+2069), so it reads in order inside Arabic.
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "رخصة البناء (\u2066permis de construire\u2069) لمنزل فردي"
    )
    expect(page.locator(".status-label")).to_have_text("تمّ استلام الملف")
    expect(page.locator(".code")).to_have_text(code)
    assert page.locator(".code").evaluate(FIRST_CHARACTER_ON_THE_LEFT), (
        "the tracking code reads right to left"
    )
    expect(page.get_by_role("link", name="Français")).to_have_attribute("hreflang", "fr")
    found = {"result": blocking_violations(page)}

    for name, url in {
        "form": f"{site.tracking}/?lang=ar",
        "error": f"{site.tracking}/suivi?code={mistype(code)}&lang=ar",
    }.items():
        page.goto(url)
        _reads_right_to_left(page)
        found[name] = blocking_violations(page)
    expect(page.get_by_role("alert")).to_contain_text("يبدو أن رمز التتبّع هذا أُدخل بشكل خاطئ")
    assert not any(found.values()), found

    site.ask_for_documents(case)
    page.goto(f"{site.tracking}/suivi/{code}?lang=ar")
    expect(page.get_by_role("heading", name="كيف تردّ")).to_be_visible()
    assert "الأجل معلَّق في انتظار ردّك" in page.content()
    assert not blocking_violations(page)


def test_the_arabic_result_page_looks_right_on_a_desktop_and_a_phone(
    site: Site,  # noqa: F811
    page: Page,
) -> None:
    case = site.submit()
    site.ask_for_documents(case)
    page.goto(f"{site.tracking}/suivi/{case['tracking_code']}?lang=ar")
    _reads_right_to_left(page)

    page.screenshot(path=SCREENSHOTS / "result-ar-desktop.png", full_page=True)
    page.set_viewport_size({"width": 375, "height": 800})
    page.screenshot(path=SCREENSHOTS / "result-ar-phone.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375, (
        "the page scrolls sideways on a phone"
    )
    _reads_right_to_left(page)
    assert Path(SCREENSHOTS / "result-ar-phone.png").stat().st_size > 10_000
