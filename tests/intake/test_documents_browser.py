"""A citizen's documents, end to end in headless Chromium (real intake, tracking and workflow processes):
a building permit sent with a plan (PDF) and a photo (JPEG) from its form; an agent sees and downloads
them (the PDF as sent, the photo without its EXIF) and asks for documents; the citizen answers from the
tracking page with a document; the agent sees it, decides, and the citizen rates the service. axe on the
reply form, and screenshots of it at phone and desktop widths (in `tests.browser.SCREENSHOTS`)."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from devtools.demo import VALID_DATA
from tests.browser import SCREENSHOTS, blocking_violations
from tests.conftest import Env, Tokens
from tests.intake.test_documents import GPS, pdf, photo_with_gps
from tests.intake.test_pages_browser import fill
from tests.processes import Services, running_services

pytestmark = pytest.mark.browser
PROCEDURE = "permis-construire"
T = TypeVar("T")


def waited(read: Callable[[], T], until: Callable[[T], bool], *, seconds: float = 20) -> T:
    deadline = time.monotonic() + seconds
    while True:
        value = read()
        if until(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


class Site(Services):
    def case(self, case_id: str) -> dict[str, Any]:
        answer = httpx.get(f"{self.workflow}/v1/cases/{case_id}", headers=self.agent, timeout=10)
        assert answer.status_code == 200, answer.text
        view: dict[str, Any] = answer.json()
        return view

    def download(self, url: str) -> httpx.Response:
        answer = httpx.get(
            url if url.startswith("http") else self.workflow + url, headers=self.agent, timeout=10
        )
        assert answer.status_code == 200, answer.text
        return answer

    def turn(self, code: str) -> dict[str, Any]:
        status: dict[str, Any] = httpx.get(f"{self.tracking}/v1/track/{code}", timeout=5).json()["status"]
        return status


@pytest.fixture
def site(env: Env, tmp_path: Path, issuer: Path, tokens: Tokens) -> Iterator[Site]:
    logs = tmp_path / "logs"
    logs.mkdir()
    documents = {"DOCUMENTS_DIR": str(tmp_path / "documents")}
    with running_services(
        env.database_url, env.nats_url, logs=logs, issuer=issuer, intake_env=documents
    ) as urls:
        yield Site(urls["intake"], urls["tracking"], urls["workflow"], tokens("agent", "urbanisme"))


def send(page: Page, form: str) -> int:
    with page.expect_navigation() as navigation:
        page.locator(f"{form} button[type=submit]").click()
    response = navigation.value
    assert response is not None
    return response.status


def test_a_plan_and_a_photo_go_to_the_agent_and_a_reply_brings_a_document(
    site: Site, page: Page, tmp_path: Path
) -> None:
    plan, photo = tmp_path / "plan-de-masse.pdf", tmp_path / "facade.jpg"
    plan.write_bytes(pdf(2000))
    photo.write_bytes(photo_with_gps())

    # The citizen fills the permit's form with a plan and a photo, and reads the code on the receipt.
    page.goto(f"{site.intake}/demarches/{PROCEDURE}?lang=fr")
    fill(page, PROCEDURE, VALID_DATA[PROCEDURE])
    page.locator("#data-plans").set_input_files([str(plan), str(photo)])
    assert send(page, "form[method=post]") == 200
    code = re.sub(r"[^0-9A-Z-]", "", page.locator("#code").inner_text())
    case_id = page.url.split("/demarches/recu/")[1].split("?")[0]

    # The agent sees both files in the case view and downloads them.
    url = f"{site.workflow}/v1/cases/{case_id}"
    opened = waited(
        lambda: httpx.get(url, headers=site.agent, timeout=5), until=lambda r: r.status_code == 200
    )
    assert opened.status_code == 200, opened.text
    [plans] = [f for f in site.case(case_id)["files"] if f["name"] == "plans"]
    sent_plan, sent_photo = plans["files"]
    assert (sent_plan["content_type"], sent_photo["content_type"]) == ("application/pdf", "image/jpeg")
    assert site.download(sent_plan["url"]).content == plan.read_bytes()
    kept_photo = site.download(sent_photo["url"]).content
    exif = Image.open(io.BytesIO(kept_photo)).getexif()
    assert not exif and GPS not in exif and b"PhoneMaker" not in kept_photo

    # The agent asks for documents; the citizen answers from the tracking page with one.
    site.act(case_id, "start-check")
    site.act(case_id, "request-documents", comment="Il manque le plan de coupe.")
    assert waited(lambda: site.turn(code), until=lambda s: s["turn"] == "citizen")["turn"] == "citizen"
    page.goto(f"{site.tracking}/suivi/{code}?lang=fr")
    form = page.locator("form.reply-form")
    expect(form).to_be_visible()
    assert blocking_violations(page, "#reponse") == []
    for width, name in ((375, "phone"), (1280, "desktop")):
        page.set_viewport_size({"width": width, "height": 900})
        page.locator("#reponse").screenshot(path=str(SCREENSHOTS / f"suivi-reply-form-{name}.png"))
    page.set_viewport_size({"width": 1280, "height": 900})
    section = tmp_path / "plan-de-coupe.pdf"
    section.write_bytes(pdf(1500))
    page.locator("#reply-message").fill("Voici le plan de coupe demandé.")
    page.locator("#reply-documents").set_input_files(str(section))
    assert send(page, "form.reply-form") == 200
    expect(page.locator(".reply-done")).to_contain_text("Votre réponse est envoyée")

    # The agent sees the reply's file, and decides.
    replied = waited(lambda: site.case(case_id), until=lambda c: bool(c["replies"]))
    [reply] = replied["replies"]
    assert reply["message"] == "Voici le plan de coupe demandé."
    [document] = reply["files"]
    assert site.download(document["url"]).content == section.read_bytes()
    if site.case(case_id)["step"] == "documents-requested":
        site.act(case_id, "receive-documents")
    site.act(case_id, "start-review")
    site.act(case_id, "accept")

    # The citizen rates the service on the page.
    waited(lambda: site.turn(code), until=lambda s: s["final"])
    page.goto(f"{site.tracking}/suivi/{code}?lang=fr")
    page.locator("label[for='rating-5']").click()
    page.locator("#comment").fill("Rapide, et sans me déplacer.")
    status = send(page, "form.rating-form")
    for _ in range(20):  # intake may not have folded the decision yet: the page says so, try again
        if status == 200:
            break
        time.sleep(0.3)
        page.locator("label[for='rating-5']").click()
        status = send(page, "form.rating-form")
    assert status == 200
    expect(page.locator(".rating-done")).to_be_visible()
