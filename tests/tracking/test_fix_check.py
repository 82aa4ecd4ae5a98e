"""After the city says a street report is done ("service fait"), its reporter says whether it is really
fixed, from the tracking page: asked plainly four weeks later (workflow's clock records `FixCheckDue`,
exactly once), "not fixed" reopens the report, and the next "done" asks again. "Done" is never shown as
"fixed": the page says what the city did, and the reporter's answer separately."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from playwright.sync_api import Page, expect

from services.tracking.app import create_app as create_tracking
from services.workflow.clock import ManualClock
from services.workflow.service import check_fix_checks
from tests.browser import SCREENSHOTS, blocking_violations
from tests.builders import act_now, make_case
from tests.conftest import Env, Tokens, _client, reach_intake_in_process, tracking_settings, workflow_app
from tests.tracking.conftest import Site
from tests.waiting import eventually, query, tracked

REPORT = "signalement-voirie"


@pytest.fixture
async def workflow_with_clock(
    env: Env, issuer: Path, intake: httpx.AsyncClient, clock: ManualClock
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = workflow_app(
        env, issuer, clock=clock, intake_internal_url="http://intake", deadline_check_seconds=3600
    )
    async for client in _client(app):
        reach_intake_in_process(app, intake)
        yield app, client


@pytest.fixture
async def tracking(env: Env, intake: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """tracking sending its forms to the in-process intake."""
    app = create_tracking(tracking_settings(env, intake_url="http://intake"))
    async for client in _client(app):
        reach_intake_in_process(app, intake)
        yield client


async def _act(workflow: httpx.AsyncClient, tokens: Tokens, case: dict[str, Any], *actions: str) -> None:
    for action in actions:
        done = await act_now(workflow, tokens("agent", "voirie"), case, action)
        assert done.status_code == 200, done.text


async def _done_in_intake(env: Env, case: dict[str, Any]) -> None:
    sql = "SELECT done_version FROM intake.steps WHERE case_id = $1::uuid AND outcome IS NOT NULL"
    await eventually(lambda: query(env.database_url, sql, case["case_id"]), until=lambda rows: bool(rows))


async def test_asked_four_weeks_after_done_not_fixed_reopens_and_the_next_done_asks_again(
    intake: httpx.AsyncClient,
    workflow_with_clock: tuple[FastAPI, httpx.AsyncClient],
    tracking: httpx.AsyncClient,
    tokens: Tokens,
    clock: ManualClock,
    env: Env,
) -> None:
    app, workflow = workflow_with_clock
    case = (await intake.post("/v1/cases", json=make_case(REPORT))).json()
    code = case["tracking_code"]
    await _act(workflow, tokens, case, "triage", "fix-at-once")
    done = await tracked(tracking, case, lambda v: v["status"]["step"] == "done")
    assert done["status"]["label"] == "Work done by the city"  # never "fixed"
    assert done["fix_check"]["asked"] is False and done["fix_check"]["answer"] is None
    page = await tracking.get(f"/suivi/{code}", params={"lang": "en"})
    assert "Is the problem fixed?" in page.text and 'name="fixed" value="not-fixed"' in page.text

    # Four weeks on, workflow's clock asks, once, however often it runs.
    pool, catalogue = app.state.runtime.pool, app.state.catalogue
    assert await check_fix_checks(pool, catalogue=catalogue, clock=clock) == 0
    clock.advance(days=28, minutes=1)
    assert await check_fix_checks(pool, catalogue=catalogue, clock=clock) == 1
    assert await check_fix_checks(pool, catalogue=catalogue, clock=clock) == 0
    asked = await tracked(tracking, case, lambda v: v["fix_check"] and v["fix_check"]["asked"])
    assert asked["fix_check"]["answer"] is None
    page = await tracking.get(f"/suivi/{code}", params={"lang": "en"})
    assert "Four weeks after the work: is the problem really fixed?" in page.text

    # Nothing chosen: the page says so, in the reporter's language, and keeps the comment.
    refused = await tracking.post(
        f"/suivi/{code}/repare", params={"lang": "en"}, data={"comment": "Still dark"}
    )
    assert refused.status_code == 422
    assert (
        "Say whether the problem is fixed or not." in refused.text
        and ">Still dark</textarea>" in refused.text
    )

    await _done_in_intake(env, case)
    sent = await tracking.post(
        f"/suivi/{code}/repare", params={"lang": "en"}, data={"fixed": "not-fixed", "comment": "Still dark"}
    )
    assert sent.status_code == 303, sent.text
    thanked = await tracking.get(sent.headers["location"])
    assert "The report is reopened" in thanked.text
    reopened = await tracked(tracking, case, lambda v: v["status"]["step"] == "to-qualify")
    assert reopened["status"]["final"] is False and reopened["fix_check"] is None
    assert "You said the problem is not fixed" in [h["label"] for h in reopened["history"]]
    again = await tracking.post(f"/suivi/{code}/repare", params={"lang": "en"}, data={"fixed": "fixed"})
    assert again.status_code == 409  # nothing to answer while the report is being dealt with again

    # The team comes back and does it again: the reporter is asked about this new "done".
    await _act(workflow, tokens, case, "schedule", "resolve")
    await tracked(
        tracking, case, lambda v: v["status"]["step"] == "done" and v["fix_check"]["answer"] is None
    )
    await eventually(
        lambda: query(
            env.database_url,
            "SELECT 1 FROM intake.steps WHERE case_id = $1::uuid AND step = 'done' AND done_version > 3",
            case["case_id"],
        ),
        until=lambda rows: bool(rows),
    )
    fixed = await tracking.post(f"/suivi/{code}/repare", params={"lang": "en"}, data={"fixed": "fixed"})
    assert fixed.status_code == 303, fixed.text
    confirmed = await tracked(tracking, case, lambda v: v["fix_check"]["answer"] == "fixed")
    assert confirmed["status"]["step"] == "done"
    twice = await intake.post("/v1/fix-checks?lang=en", json={"tracking_code": code, "fixed": False})
    assert twice.status_code == 409 and "already answered" in twice.json()["detail"]
    answers = await query(
        env.database_url,
        "SELECT fixed FROM intake.fix_checks WHERE case_id = $1::uuid ORDER BY done_version",
        case["case_id"],
    )
    assert [r["fixed"] for r in answers] == [False, True]


async def test_a_report_not_done_cannot_be_said_fixed(intake: httpx.AsyncClient, env: Env) -> None:
    case = (await intake.post("/v1/cases", json=make_case(REPORT))).json()
    answer = await intake.post(
        "/v1/fix-checks?lang=en", json={"tracking_code": case["tracking_code"], "fixed": True}
    )
    assert answer.status_code == 409
    assert "once the report is marked" in answer.json()["detail"]
    permit = (await intake.post("/v1/cases", json=make_case("permis-construire"))).json()
    answer = await intake.post(
        "/v1/fix-checks", json={"tracking_code": permit["tracking_code"], "fixed": True}
    )
    assert answer.status_code == 409


# In headless Chromium, with intake, workflow and tracking as real processes (the rating form's site)


@pytest.mark.browser
@pytest.mark.parametrize(
    ("lang", "legend", "no"),
    [
        ("fr", "Sur place, le problème est-il réglé ?", "Non, le problème est toujours là"),
        ("ar", "في عين المكان، هل حُلّت المشكلة؟", "لا، المشكلة ما زالت قائمة"),
    ],
)
def test_the_question_is_accessible_and_looks_right_on_a_phone_and_a_desktop(
    site: Site, page: Page, lang: str, legend: str, no: str
) -> None:
    code = site.decided_case()
    page.goto(f"{site.tracking}/suivi/{code}?lang={lang}")
    question = page.get_by_role("group", name=legend)
    expect(question).to_be_visible()
    assert not blocking_violations(page), blocking_violations(page)
    page.locator("#repare").screenshot(path=SCREENSHOTS / f"fix-check-{lang}-desktop.png")
    page.screenshot(path=SCREENSHOTS / f"fix-check-page-{lang}-desktop.png", full_page=True)
    page.set_viewport_size({"width": 375, "height": 800})
    page.screenshot(path=SCREENSHOTS / f"fix-check-page-{lang}-phone.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375, (
        "the page scrolls sideways on a phone"
    )
    page.get_by_label(no).check()
    page.locator("#repare button[type=submit]").click()
    expect(page.get_by_role("status").first).to_be_visible()
    assert "repare=not-fixed" in page.url
    page.screenshot(path=SCREENSHOTS / f"fix-check-answered-{lang}-phone.png", full_page=True)
