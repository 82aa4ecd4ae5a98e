"""Once the case is decided, the citizen rates the service from the tracking page: a plain form, sent on
by tracking to intake, answered with thanks, or with the page saying what is wrong in their language."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from playwright.sync_api import Page, expect

from services.tracking.app import create_app as create_tracking
from tests.browser import SCREENSHOTS, blocking_violations
from tests.builders import make_case
from tests.conftest import Env, Tokens, _client, reach_intake_in_process, tracking_settings
from tests.tracking.conftest import Site
from tests.waiting import eventually, query, scalar

# A street-light report: an agent of the voirie service fixes it in two actions, which decides it.
PROCEDURE = "signalement-voirie"
FIX_AT_ONCE = ("triage", "fix-at-once")
FORM = 'action="/suivi/{code}/avis?lang={lang}#avis"'


@pytest.fixture
def tracking_app(env: Env) -> FastAPI:
    return create_tracking(tracking_settings(env, intake_url="http://intake"))


@pytest.fixture
async def tracking(tracking_app: FastAPI, intake: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """tracking sending its rating form to the in-process intake."""
    async for client in _client(tracking_app):
        reach_intake_in_process(tracking_app, intake)
        yield client


async def submit(intake: httpx.AsyncClient) -> dict[str, Any]:
    answer = await intake.post("/v1/cases", json=make_case(PROCEDURE))
    assert answer.status_code == 201, answer.text
    case: dict[str, Any] = answer.json()
    return case


async def decide(
    case: dict[str, Any],
    *,
    workflow: httpx.AsyncClient,
    tracking: httpx.AsyncClient,
    tokens: Tokens,
    env: Env,
) -> None:
    """An agent fixes the street light; tracking and intake both know the case is decided."""
    agent, url = tokens("agent", "voirie"), f"/v1/cases/{case['case_id']}"
    opened = await eventually(lambda: workflow.get(url, headers=agent), until=lambda r: r.status_code == 200)
    assert opened.status_code == 200, opened.text
    for version, action in enumerate(FIX_AT_ONCE, start=1):
        done = await workflow.post(
            f"{url}/actions", headers=agent, json={"action": action, "expected_version": version}
        )
        assert done.status_code == 200, done.text
    shown = await eventually(
        lambda: tracking.get(f"/v1/track/{case['tracking_code']}"),
        until=lambda r: r.status_code == 200 and r.json()["status"]["final"],
    )
    assert shown.json()["status"]["final"], shown.text
    decided = "SELECT count(*) FROM intake.decisions WHERE case_id = $1::uuid"
    await eventually(lambda: scalar(env.database_url, decided, case["case_id"]), until=lambda n: n == 1)


async def rate(tracking: httpx.AsyncClient, code: str, *, lang: str = "fr", **form: str) -> httpx.Response:
    return await tracking.post(f"/suivi/{code}/avis", params={"lang": lang}, data=form)


async def ratings(env: Env) -> list[tuple[int, str | None]]:
    rows = await query(env.database_url, "SELECT rating, comment FROM intake.ratings")
    return [(r["rating"], r["comment"]) for r in rows]


@pytest.mark.parametrize(
    ("lang", "legend", "very_happy"),
    [("fr", "Votre note, de 1 à 5", "Très satisfait"), ("en", "Your rating, from 1 to 5", "Very satisfied")],
)
async def test_a_decided_case_shows_the_form_and_the_rating_is_recorded_once(
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    tracking: httpx.AsyncClient,
    tokens: Tokens,
    env: Env,
    lang: str,
    legend: str,
    very_happy: str,
) -> None:
    case = await submit(intake)
    code = case["tracking_code"]
    await decide(case, workflow=workflow, tracking=tracking, tokens=tokens, env=env)

    page = await tracking.get(f"/suivi/{code}", params={"lang": lang})
    assert page.status_code == 200, page.text
    assert FORM.format(code=code, lang=lang) in page.text and 'method="post"' in page.text
    assert f"<legend>{legend}</legend>" in page.text
    assert len(re.findall(r'<input type="radio" id="rating-(\d)" name="rating"', page.text)) == 5
    assert re.search(
        rf'<label for="rating-5"><span class="choice-value">5</span> {very_happy}</label>', page.text
    )
    assert '<textarea id="comment" name="comment"' in page.text

    sent = await rate(tracking, code, lang=lang, rating="5", comment="Réparé en deux jours, merci !")
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == f"/suivi/{code}?lang={lang}&avis=merci"
    assert await ratings(env) == [(5, "Réparé en deux jours, merci !")]

    thanked = await tracking.get(sent.headers["location"])
    assert thanked.status_code == 200
    assert {"fr": "Merci : votre note est enregistrée.", "en": "Thank you: your rating has been recorded."}[
        lang
    ] in thanked.text
    assert FORM.format(code=code, lang=lang) not in thanked.text

    again = await intake.post("/v1/ratings", json={"tracking_code": code, "rating": 1})
    assert again.status_code == 409
    done = {"fr": "Vous avez déjà noté le service", "en": "You have rated the service"}[lang]
    later = await eventually(
        lambda: tracking.get(f"/suivi/{code}", params={"lang": lang}), until=lambda r: done in r.text
    )
    assert done in later.text and FORM.format(code=code, lang=lang) not in later.text
    assert await ratings(env) == [(5, "Réparé en deux jours, merci !")]


async def test_a_second_rating_through_the_form_says_it_was_rated(
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    tracking: httpx.AsyncClient,
    tokens: Tokens,
    env: Env,
) -> None:
    case = await submit(intake)
    await decide(case, workflow=workflow, tracking=tracking, tokens=tokens, env=env)
    first = await intake.post("/v1/ratings", json={"tracking_code": case["tracking_code"], "rating": 2})
    assert first.status_code == 201

    again = await rate(tracking, case["tracking_code"], lang="en", rating="4")
    assert again.status_code == 409
    assert "You have rated the service for this case" in again.text
    assert 'name="rating"' not in again.text
    assert await ratings(env) == [(2, None)]


async def test_a_bad_value_is_told_in_the_visitors_language_and_what_was_typed_is_kept(
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    tracking: httpx.AsyncClient,
    tokens: Tokens,
    env: Env,
) -> None:
    case = await submit(intake)
    code = case["tracking_code"]
    await decide(case, workflow=workflow, tracking=tracking, tokens=tokens, env=env)

    for bad in ({"rating": "9"}, {}, {"rating": "<b>5</b>"}):
        page = await rate(tracking, code, **bad, comment="Pas de <nouvelles>")
        assert page.status_code == 422, page.text
        assert "<title>Erreur – " in page.text and 'role="alert"' in page.text
        assert "Choisissez une note de 1 à 5." in page.text
        assert '<a href="#rating-1">' in page.text and 'aria-describedby="rating-error"' in page.text
        assert ">Pas de &lt;nouvelles&gt;</textarea>" in page.text
        assert "<b>" not in page.text

    too_long = await rate(tracking, code, lang="en", rating="3", comment="x" * 2001)
    assert too_long.status_code == 422, too_long.text
    assert "2000" in too_long.text and '<a href="#comment">' in too_long.text
    assert 'aria-invalid="true"' in too_long.text and "x" * 2001 + "</textarea>" in too_long.text
    assert 'value="3" checked' in too_long.text
    assert await ratings(env) == []


async def test_an_undecided_case_shows_no_form_and_refuses_a_rating(
    intake: httpx.AsyncClient, tracking: httpx.AsyncClient, env: Env
) -> None:
    code = (await submit(intake))["tracking_code"]

    page = await eventually(lambda: tracking.get(f"/suivi/{code}"), until=lambda r: r.status_code == 200)
    assert page.status_code == 200
    assert "/avis" not in page.text and 'name="rating"' not in page.text
    assert "Donnez votre avis" not in page.text

    forced = await rate(tracking, code, lang="en", rating="5")
    assert forced.status_code == 409
    assert "once the case is decided" in forced.text and 'name="rating"' not in forced.text
    assert await ratings(env) == []


async def test_intake_down_is_said_on_the_page_with_what_was_typed(
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    tracking: httpx.AsyncClient,
    tracking_app: FastAPI,
    tokens: Tokens,
    env: Env,
    caplog: pytest.LogCaptureFixture,
) -> None:
    case = await submit(intake)
    code = case["tracking_code"]
    await decide(case, workflow=workflow, tracking=tracking, tokens=tokens, env=env)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("intake is down", request=request)

    tracking_app.state.http = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    page = await rate(tracking, code, lang="en", rating="4", comment="Quick and kind")

    assert page.status_code == 503, page.text
    assert page.headers["retry-after"]
    assert "could not be sent right now" in page.text
    assert 'value="4" checked' in page.text and ">Quick and kind</textarea>" in page.text
    logged = " ".join(r.getMessage() for r in caplog.records if "http://testserver" not in r.getMessage())
    assert code not in logged and code.replace("-", "") not in logged  # the test's own requests aside
    assert await ratings(env) == []


# In headless Chromium, with intake, workflow and tracking as real processes (`conftest.site`)


@pytest.mark.browser
def test_the_rating_form_is_accessible_and_looks_right_on_a_phone_and_a_desktop(
    site: Site, page: Page
) -> None:
    code = site.decided_case()
    page.goto(f"{site.tracking}/suivi/{code}?lang=fr")
    form = page.get_by_role("group", name="Votre note, de 1 à 5")
    expect(form).to_be_visible()
    assert not blocking_violations(page), blocking_violations(page)
    page.screenshot(path=SCREENSHOTS / "rating-desktop.png", full_page=True)
    page.locator("#avis").screenshot(path=SCREENSHOTS / "rating-form-desktop.png")
    page.set_viewport_size({"width": 375, "height": 800})
    page.screenshot(path=SCREENSHOTS / "rating-phone.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375, (
        "the page scrolls sideways on a phone"
    )

    page.get_by_role("button", name="Envoyer ma note").click()  # no rating chosen
    expect(page.get_by_role("alert")).to_contain_text("Choisissez une note de 1 à 5.")
    expect(page.get_by_role("alert")).to_be_in_viewport()  # the page opens at the form (#avis)
    assert not blocking_violations(page), blocking_violations(page)
    page.screenshot(path=SCREENSHOTS / "rating-error-phone.png", full_page=True)
    page.get_by_role("alert").get_by_role("link").click()
    expect(page.get_by_label("Très insatisfait")).to_be_focused()

    page.locator("label[for=rating-4]").click()  # the label, not only the small circle
    expect(page.get_by_label("4 Satisfait", exact=True)).to_be_checked()
    page.get_by_label("Votre commentaire (facultatif)").fill("Lampadaire réparé vite.")
    page.get_by_role("button", name="Envoyer ma note").click()
    expect(page.get_by_role("status")).to_have_text("Merci : votre note est enregistrée.")
    expect(page.get_by_role("status")).to_be_in_viewport()
    expect(page).to_have_url(re.compile(r"/suivi/[A-Z0-9-]+\?lang=fr&avis=merci(#avis)?$"))
    assert not blocking_violations(page), blocking_violations(page)
    page.screenshot(path=SCREENSHOTS / "rating-thanks-phone.png", full_page=True)
