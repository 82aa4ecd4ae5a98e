"""An agent sees, in a street report's case view, the open reports of the same kind within 50 m, and
merges a duplicate into its original (`mark-duplicate` with `duplicate_of`): the duplicate's reporter
then follows the original from their own tracking page (web and JSON), its state changing as the
original moves. A report merged into itself or into a closed report is refused, saying why. Anyone may
follow a report on its public page, which shows nothing its reporter wrote."""

from __future__ import annotations

import uuid
from html import unescape
from pathlib import Path
from typing import Any

import httpx

from tests.builders import act_now, make_case
from tests.conftest import Env, Tokens, _client, workflow_app
from tests.reports.places import DESCRIPTION, HERE, north_of, report
from tests.waiting import eventually, query, tracked


class Agent:
    """An agent of the street works service, acting on reports through workflow's API."""

    def __init__(self, workflow: httpx.AsyncClient, tokens: Tokens) -> None:
        self.workflow, self.headers = workflow, tokens("agent", "voirie", agent="lea")

    async def view(self, case: dict[str, Any], until: Any = lambda v: True) -> dict[str, Any]:
        url = f"/v1/cases/{case['case_id']}?lang=en"
        seen = await eventually(
            lambda: self.workflow.get(url, headers=self.headers),
            until=lambda r: r.status_code == 200 and until(r.json()),
        )
        assert seen.status_code == 200, seen.text
        view: dict[str, Any] = seen.json()
        return view

    async def act(self, case: dict[str, Any], action: str, **extra: Any) -> httpx.Response:
        return await act_now(self.workflow, self.headers, case, action, lang="en", **extra)


async def _known_closed_by_intake(env: Env, case: dict[str, Any]) -> None:
    sql = "SELECT 1 FROM intake.steps WHERE case_id = $1::uuid AND outcome IS NOT NULL"
    await eventually(lambda: query(env.database_url, sql, case["case_id"]), until=bool)


async def test_the_agent_merges_a_duplicate_and_its_reporter_follows_the_original(
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    tracking: httpx.AsyncClient,
    tokens: Tokens,
    env: Env,
) -> None:
    agent = Agent(workflow, tokens)
    original = await report(intake, description=DESCRIPTION)
    closed = await report(intake, north_of(HERE, 10))
    duplicate = await report(intake, north_of(HERE, 30))
    assert (await agent.act(closed, "transfer")).status_code == 200
    await _known_closed_by_intake(env, closed)

    # The case view lists the candidates: the open report 30 m away, not the closed one, not itself.
    view = await agent.view(duplicate)
    assert view["nearby_unavailable"] is None
    assert [(r["case_id"], r["distance_m"], r["step"]) for r in view["nearby"]] == [
        (original["case_id"], 30, "new")
    ]
    assert view["nearby"][0]["state_label"] == "Report received"

    # Merging needs the original, another open report: each refusal says why.
    for extra, words in (
        ({}, "Say which report this one duplicates"),
        ({"duplicate_of": duplicate["case_id"]}, "A report cannot duplicate itself"),
        ({"duplicate_of": closed["case_id"]}, "The first report is closed already"),
        ({"duplicate_of": str(uuid.uuid4())}, "check the id of the first report"),
    ):
        refused = await agent.act(duplicate, "mark-duplicate", **extra)
        assert refused.status_code == 422, refused.text
        assert words in refused.json()["detail"], refused.text
    merged = await agent.act(duplicate, "mark-duplicate", duplicate_of=original["case_id"])
    assert merged.status_code == 200, merged.text

    # The duplicate's reporter follows the original, from their own tracking code.
    followed = await tracked(tracking, duplicate, lambda v: v["followed_in"] is not None)
    assert followed["status"]["step"] == "duplicate" and followed["status"]["label"] == "Already reported"
    into = followed["followed_in"]
    assert (into["case_id"], into["step"], into["label"]) == (original["case_id"], "new", "Report received")
    assert into["url"] == f"/signalements/{original['case_id']}?lang=en"
    page = unescape((await tracking.get(f"/suivi/{duplicate['tracking_code']}?lang=en")).text)
    assert f"Already reported: this problem is followed in report {original['case_id']}" in page
    assert "Report received" in page

    # The original moves on: the duplicate's page says where it stands now.
    for action in ("triage", "schedule"):
        assert (await agent.act(original, action)).status_code == 200
    moved = await tracked(tracking, duplicate, lambda v: v["followed_in"]["step"] == "scheduled")
    into = moved["followed_in"]
    assert into["label"] == "Work scheduled" and into["final"] is False
    assert [h["label"] for h in into["history"]] == ["Report received", "Being assessed", "Work scheduled"]
    assert [(s["step"], s["state"]) for s in into["steps"]] == [
        ("new", "done"),
        ("to-qualify", "done"),
        ("scheduled", "current"),
    ]
    # Never the original's tracking code, nor anything its reporter wrote.
    text = (await tracking.get(f"/v1/track/{duplicate['tracking_code']}", params={"lang": "en"})).text
    assert original["tracking_code"] not in text and "lampadaire" not in text
    page = unescape((await tracking.get(f"/suivi/{duplicate['tracking_code']}?lang=fr")).text)
    assert "Déjà signalé : ce problème est suivi dans le signalement" in page
    assert "Intervention programmée" in page and original["tracking_code"] not in page


async def test_anyone_follows_a_report_on_its_public_page_which_shows_nothing_personal(
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    tracking: httpx.AsyncClient,
    tokens: Tokens,
) -> None:
    agent = Agent(workflow, tokens)
    original = await report(intake, location={"address": "3 place du Marché"}, description=DESCRIPTION)
    duplicate = await report(intake, north_of(HERE, 20))
    permit = (await intake.post("/v1/cases", json=make_case("permis-construire"))).json()
    await agent.view(duplicate)
    assert (await agent.act(duplicate, "mark-duplicate", duplicate_of=original["case_id"])).status_code == 200
    await tracked(tracking, duplicate, lambda v: v["followed_in"] is not None)

    page = await tracking.get(f"/signalements/{original['case_id']}", params={"lang": "en"})
    assert page.status_code == 200, page.text
    text = unescape(page.text)
    for words in ("Public report", "Street lighting", "Centre", "Report received", original["case_id"]):
        assert words in text, words
    for secret in ("Marché", "lampadaire", "Camille", original["tracking_code"], "45.75", "4.83"):
        assert secret not in text, secret

    of_duplicate = unescape((await tracking.get(f"/signalements/{duplicate['case_id']}?lang=en")).text)
    assert f"Already reported: this problem is followed in report {original['case_id']}" in of_duplicate
    arabic = unescape((await tracking.get(f"/signalements/{original['case_id']}?lang=ar")).text)
    assert 'dir="rtl"' in arabic and "الإنارة العمومية" in arabic and "تمّ استلام البلاغ" in arabic

    for unknown in (permit["case_id"], str(uuid.uuid4()), "not-an-id"):
        missing = await tracking.get(f"/signalements/{unknown}", params={"lang": "en"})
        assert missing.status_code == 404 and "Report not found" in missing.text, unknown


async def test_when_intake_does_not_answer_the_case_view_says_why_nearby_is_missing(
    env: Env, issuer: Path, intake: httpx.AsyncClient, tokens: Tokens
) -> None:
    app = workflow_app(env, issuer, intake_internal_url="http://127.0.0.1:9")  # nothing listens there
    async for workflow in _client(app):
        case = await report(intake)
        view = await Agent(workflow, tokens).view(case)
    assert view["step"] == "new" and view["nearby"] is None
    assert (
        "open reports nearby cannot be shown right now: intake does not answer" in view["nearby_unavailable"]
    )
