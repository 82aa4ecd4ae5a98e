"""An agent deciding on a case reads what the citizen submitted: every form field with its label, and the
citizen's replies, fetched from intake at each read (and each read logged), never stored in workflow."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx

from shared.settings import DEVELOPMENT_INTERNAL_TOKEN
from tests.builders import make_case
from tests.conftest import Env, Tokens, _client, workflow_app
from tests.waiting import eventually, query
from tests.workflow.test_agents import act, open_case

REPLY = {
    "message": "Voici le plan de masse signé.",
    "documents": ["https://depot.example.org/pieces/plan-de-masse.pdf"],
}
INTERNAL = {"Authorization": f"Bearer {DEVELOPMENT_INTERNAL_TOKEN}"}


def _form(detail: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {answer["name"]: answer for answer in detail["form"]}


async def test_the_case_shows_every_form_field_with_its_label_in_the_agents_language(
    intake: httpx.AsyncClient, workflow: httpx.AsyncClient, tokens: Tokens
) -> None:
    case = await open_case(intake, workflow, tokens)
    agent = tokens("agent", "urbanisme")
    french = (await workflow.get(f"/v1/cases/{case['case_id']}?lang=fr", headers=agent)).json()
    english = (
        await workflow.get(f"/v1/cases/{case['case_id']}", headers={**agent, "Accept-Language": "en"})
    ).json()

    assert [a["name"] for a in french["form"]] == [
        "parcel_address",
        "cadastral_reference",
        "district",
        "floor_area_m2",
        "project_description",
        "plans_url",
    ]
    fr, en = _form(french), _form(english)
    assert fr["parcel_address"] == {
        "name": "parcel_address",
        "label": "Adresse du terrain",
        "value": "12 rue des Lilas, 69003 Lyon",
        "value_label": None,
    }
    assert en["parcel_address"]["label"] == "Address of the land"
    assert (fr["district"]["value"], fr["district"]["value_label"]) == ("est", "Est")
    assert (en["district"]["label"], en["district"]["value_label"]) == ("District", "East")
    assert en["floor_area_m2"]["value"] == 120 and en["floor_area_m2"]["label"] == "Floor area created (m²)"
    assert en["plans_url"]["value"] is None  # optional, left empty: still listed
    assert english["applicant"]["name"] == "Camille Martin" and english["replies"] == []
    assert english["submission_unavailable"] is None


async def test_the_case_shows_the_citizens_replies_and_each_read_is_logged(
    intake: httpx.AsyncClient, workflow: httpx.AsyncClient, tokens: Tokens, env: Env
) -> None:
    case = await open_case(intake, workflow, tokens)
    agent = tokens("agent", "urbanisme", agent="zoe")
    await act(workflow, agent, case, "start-check", 1)
    await act(workflow, agent, case, "request-documents", 2)
    replied = await intake.post("/v1/replies", json={"tracking_code": case["tracking_code"], **REPLY})
    assert replied.status_code == 202, replied.text
    answer = await eventually(
        lambda: workflow.get(f"/v1/cases/{case['case_id']}", headers=agent),
        until=lambda r: r.json()["step"] == "completeness-check",
        timeout=10,
    )

    (reply,) = answer.json()["replies"]
    assert reply["message"] == REPLY["message"] and reply["documents"] == REPLY["documents"]
    assert reply["reply_id"] == replied.json()["reply_id"]
    assert reply["received_at"].startswith(replied.json()["received_at"][:16])
    reads = await query(
        env.database_url,
        "SELECT agent, what FROM workflow.personal_data_reads WHERE case_id = $1 ORDER BY id",
        uuid.UUID(case["case_id"]),
    )
    assert (reads[0]["agent"], reads[0]["what"]) == ("admin-urbanisme", ["applicant", "form"])
    assert (reads[-1]["agent"], reads[-1]["what"]) == ("zoe", ["applicant", "form", "replies"])
    # Nothing of it is kept in workflow's tables.
    dumped = await query(env.database_url, "SELECT string_agg(envelope::text, '') FROM workflow.events")
    assert "plan de masse" not in dumped[0][0] and "Lilas" not in dumped[0][0]


async def test_when_intake_does_not_answer_the_rest_of_the_case_is_shown_with_a_note(
    env: Env, issuer: Path, intake: httpx.AsyncClient, tokens: Tokens
) -> None:
    app = workflow_app(env, issuer, intake_internal_url="http://127.0.0.1:9")  # nothing listens there
    async for workflow in _client(app):
        case = (await intake.post("/v1/cases", json=make_case())).json()
        answer = await _read_once_opened(workflow, case["case_id"], tokens("agent"))
    detail = answer.json()
    assert detail["step"] == "received" and detail["history"]
    assert detail["applicant"] is None and detail["form"] == [] and detail["replies"] == []
    assert "intake does not answer" in detail["submission_unavailable"]
    reads = await query(env.database_url, "SELECT count(*) FROM workflow.personal_data_reads")
    assert reads[0][0] == 0  # nothing personal was shown


async def _read_once_opened(
    workflow: httpx.AsyncClient, case_id: str, headers: dict[str, str]
) -> httpx.Response:
    return await eventually(
        lambda: workflow.get(f"/v1/cases/{case_id}?lang=en", headers=headers),
        until=lambda r: r.status_code == 200,
    )


async def test_intakes_internal_api_answers_with_its_own_error_keys(intake: httpx.AsyncClient) -> None:
    unknown = uuid.uuid4()
    for path in (f"/internal/v1/cases/{unknown}",):
        answer = await intake.get(path, headers=INTERNAL)
        assert answer.status_code == 404, answer.text
        assert answer.json()["type"] == "intake.case_not_found" and str(unknown) in answer.json()["detail"]
        assert (await intake.get(path)).status_code == 401
        wrong = await intake.get(path, headers={"Authorization": "Bearer not-the-internal-token"})
        assert wrong.status_code == 401


async def test_after_the_decision_the_agent_reads_the_citizens_rating_and_comment(
    intake: httpx.AsyncClient, workflow: httpx.AsyncClient, tokens: Tokens, env: Env
) -> None:
    case = await open_case(intake, workflow, tokens)
    agent = tokens("agent", "urbanisme", agent="zoe")
    for version, action in enumerate(("start-check", "start-review", "accept"), start=1):
        await act(workflow, agent, case, action, version)
    comment = "Dossier traité vite, merci."
    rated = await eventually(  # intake learns of the decision from workflow's events
        lambda: intake.post(
            "/v1/ratings", json={"tracking_code": case["tracking_code"], "rating": 4, "comment": comment}
        ),
        until=lambda r: r.status_code != 409,
        timeout=15,
    )
    assert rated.status_code == 201, rated.text
    detail = (await workflow.get(f"/v1/cases/{case['case_id']}", headers=agent)).json()
    assert detail["outcome"] == "accepted"
    assert (detail["rating"]["rating"], detail["rating"]["comment"]) == (4, comment)
    reads = await query(
        env.database_url,
        "SELECT what FROM workflow.personal_data_reads WHERE case_id = $1 ORDER BY id DESC LIMIT 1",
        uuid.UUID(case["case_id"]),
    )
    assert "rating" in reads[0]["what"]
