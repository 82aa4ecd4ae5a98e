"""Agents move cases through their procedure: the queue, a case, actions, conflicts and rights."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.builders import make_case
from tests.conftest import Env, Tokens
from tests.waiting import eventually, scalar

AGENT = ("agent", "urbanisme")


async def open_case(
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    tokens: Tokens,
    procedure: str = "permis-construire",
) -> dict[str, Any]:
    """Submit a case as a citizen and wait until workflow has opened it."""
    case = (await intake.post("/v1/cases", json=make_case(procedure))).json()
    answer = await eventually(
        lambda: workflow.get(f"/v1/cases/{case['case_id']}", headers=tokens("admin")),
        until=lambda r: r.status_code == 200,
    )
    assert answer.status_code == 200, answer.text
    return {**case, **answer.json()}


async def act(
    workflow: httpx.AsyncClient,
    headers: dict[str, str],
    case: dict[str, Any],
    action: str,
    version: int,
    **extra: Any,
) -> httpx.Response:
    return await workflow.post(
        f"/v1/cases/{case['case_id']}/actions",
        headers=headers,
        json={"action": action, "expected_version": version, **extra},
    )


async def test_an_agent_processes_a_building_permit_and_the_citizen_sees_each_step(
    intake: httpx.AsyncClient, workflow: httpx.AsyncClient, tracking: httpx.AsyncClient, tokens: Tokens
) -> None:
    case = await open_case(intake, workflow, tokens)
    agent = tokens(*AGENT, agent="claire")
    assert case["step"] == "received" and case["version"] == 1
    assert case["applicant"]["email"] == "camille.martin@example.org"

    steps = [
        ("take", None),
        ("start-check", "completeness-check"),
        ("start-review", "review"),
        ("accept", "accepted"),
    ]
    version = 1
    for action, step in steps:
        answer = await act(workflow, agent, case, action, version, comment="RAS")
        assert answer.status_code == 200, answer.text
        version = answer.json()["version"]
        if step is not None:
            seen = await eventually(
                lambda: tracking.get(f"/v1/track/{case['tracking_code']}", params={"lang": "en"}),
                until=lambda r, step=step: r.json()["status"]["step"] == step,
                timeout=5,
            )
            assert seen.json()["status"]["step"] == step
    final = seen.json()
    assert final["status"]["label"] == "Permit granted" and final["status"]["final"]
    detail = (await workflow.get(f"/v1/cases/{case['case_id']}", headers=agent)).json()
    assert detail["outcome"] == "accepted" and detail["allowed_actions"] == []
    assert [h["type"].split(".")[3] for h in detail["history"]] == [
        "opened",
        "assigned",
        "step-changed",
        "step-changed",
        "step-changed",
    ]
    assert detail["history"][1]["by"] == "claire" and detail["history"][2]["comment"] == "RAS"


async def test_two_agents_acting_at_once_one_wins_the_other_gets_409(
    intake: httpx.AsyncClient, workflow: httpx.AsyncClient, tokens: Tokens
) -> None:
    case = await open_case(intake, workflow, tokens)
    answers = await asyncio.gather(
        act(workflow, tokens("agent", "urbanisme", agent="alice"), case, "take", 1),
        act(workflow, tokens("agent", "urbanisme", agent="bob"), case, "take", 1),
    )
    assert sorted(a.status_code for a in answers) == [200, 409]
    loser = next(a for a in answers if a.status_code == 409).json()
    assert loser["current_version"] == 2
    assert "expected_version=2" in loser["detail"]


async def test_many_actions_at_one_version_record_one_and_refuse_the_others_with_the_current_version(
    env: Env, intake: httpx.AsyncClient, workflow: httpx.AsyncClient, tokens: Tokens
) -> None:
    # An action is read without a lock and written only if the case is still at the version read: when
    # many race (each read version 1), one is recorded and every other is a 409, never a lost write.
    case = await open_case(intake, workflow, tokens)
    agents = [f"agent-{n}" for n in range(8)]
    answers = await asyncio.gather(
        *(
            act(workflow, tokens("agent", "urbanisme", agent=agent), case, "take", 1, comment=f"par {agent}")
            for agent in agents
        )
    )
    assert sorted(a.status_code for a in answers) == [200] + [409] * 7, [a.text for a in answers]
    (winner,) = [a.json() for a in answers if a.status_code == 200]
    assert all(a.json()["current_version"] == 2 for a in answers if a.status_code == 409)
    recorded = await scalar(
        env.database_url,
        "SELECT count(*) FROM workflow.events WHERE case_id = $1",
        uuid.UUID(case["case_id"]),
    )
    assert recorded == 2  # CaseOpened and the one CaseAssigned
    detail = (await workflow.get(f"/v1/cases/{case['case_id']}", headers=tokens("admin"))).json()
    assert detail["assignee"] == winner["assignee"] and detail["version"] == 2
    assert detail["history"][-1]["comment"] == f"par {winner['assignee']}"
    notes = await scalar(env.database_url, "SELECT count(*) FROM workflow.notes")
    assert notes == 1  # the winner's comment only


async def test_an_action_the_procedure_does_not_allow_names_the_allowed_ones(
    intake: httpx.AsyncClient, workflow: httpx.AsyncClient, tokens: Tokens
) -> None:
    case = await open_case(intake, workflow, tokens)
    answer = await act(workflow, tokens(*AGENT), case, "accept", 1)
    assert answer.status_code == 422
    assert "take, start-check" in answer.json()["detail"]


async def test_a_retried_action_with_the_same_key_is_done_once(
    intake: httpx.AsyncClient, workflow: httpx.AsyncClient, tokens: Tokens
) -> None:
    case = await open_case(intake, workflow, tokens)
    headers = {**tokens(*AGENT), "Idempotency-Key": "click-1"}
    first, again = [await act(workflow, headers, case, "start-check", 1) for _ in range(2)]
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.headers["Idempotent-Replayed"] == "true" and first.json() == again.json()
    detail = (await workflow.get(f"/v1/cases/{case['case_id']}", headers=tokens(*AGENT))).json()
    assert detail["version"] == 2


async def test_the_queue_shows_my_services_cases_most_urgent_first(
    intake: httpx.AsyncClient, workflow: httpx.AsyncClient, tokens: Tokens
) -> None:
    permit = await open_case(intake, workflow, tokens, "permis-construire")  # due in 2 months
    works = await open_case(intake, workflow, tokens, "declaration-prealable")  # due in 1 month
    await open_case(intake, workflow, tokens, "signalement-voirie")  # another service
    queue = (await workflow.get("/v1/queue", headers=tokens(*AGENT))).json()
    assert [i["case_id"] for i in queue["items"]] == [works["case_id"], permit["case_id"]]
    assert queue["total"] == 2 and queue["items"][0]["days_left"] < queue["items"][1]["days_left"]
    filtered = (await workflow.get("/v1/queue?procedure=permis-construire", headers=tokens(*AGENT))).json()
    assert [i["case_id"] for i in filtered["items"]] == [permit["case_id"]]
    everything = (await workflow.get("/v1/queue?page_size=1&page=3", headers=tokens("admin"))).json()
    assert everything["total"] == 3 and len(everything["items"]) == 1


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"action": "take"}, 422, "expected_version"),
        ({"action": "take", "expected_version": 0}, 422, "expected_version"),
        ({"action": "", "expected_version": 1}, 422, "action"),
        ({"action": "take", "expected_version": 1, "colour": "red"}, 422, "colour"),
    ],
)
async def test_bad_action_requests_are_refused_naming_the_field(
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    tokens: Tokens,
    body: dict[str, Any],
    status: int,
    field: str,
) -> None:
    case = await open_case(intake, workflow, tokens)
    answer = await workflow.post(f"/v1/cases/{case['case_id']}/actions", json=body, headers=tokens(*AGENT))
    assert answer.status_code == status, answer.text
    assert field in [e["field"] for e in answer.json()["errors"]]


async def test_other_bad_requests_get_clear_4xx(
    intake: httpx.AsyncClient, workflow: httpx.AsyncClient, tokens: Tokens
) -> None:
    case = await open_case(intake, workflow, tokens)
    supervisor = tokens("supervisor", "urbanisme")
    url = f"/v1/cases/{case['case_id']}/actions"
    malformed = await workflow.post(
        url, content=b"{", headers={**supervisor, "Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    assert (await workflow.get("/v1/cases/not-a-uuid", headers=supervisor)).status_code == 422
    unknown = await workflow.get("/v1/cases/00000000-0000-4000-8000-000000000000", headers=supervisor)
    assert unknown.status_code == 404
    assert (await act(workflow, supervisor, case, "assign", 1)).json()["type"] == "workflow.assignee_required"
    for action in ("start-check", "start-review"):
        version = (await act(workflow, supervisor, case, action, 1 if action == "start-check" else 2)).json()[
            "version"
        ]
    no_reason = await act(workflow, supervisor, case, "reject", version)
    assert no_reason.status_code == 422 and no_reason.json()["type"] == "workflow.reason_required"
    assert (await workflow.get("/v1/queue?page_size=0", headers=supervisor)).status_code == 422


async def test_the_citizens_reply_restarts_the_case_and_its_clock(
    intake: httpx.AsyncClient, workflow: httpx.AsyncClient, tracking: httpx.AsyncClient, tokens: Tokens
) -> None:
    case = await open_case(intake, workflow, tokens)
    agent = tokens(*AGENT)
    await act(workflow, agent, case, "start-check", 1)
    asked = await act(workflow, agent, case, "request-documents", 2, comment="Il manque le plan de masse.")
    assert asked.json()["step"] == "documents-requested"
    waiting = await eventually(
        lambda: tracking.get(f"/v1/track/{case['tracking_code']}?lang=en"),
        until=lambda r: r.json()["status"]["turn"] == "citizen",
        timeout=5,
    )
    assert waiting.json()["clocks"]["clock_paused"] and "Il manque" not in waiting.text

    replied = await intake.post(
        "/v1/replies",
        json={
            "tracking_code": case["tracking_code"],
            "message": "Voici le plan de masse.",
            "documents": ["https://docs.example.org/plan.pdf"],
        },
    )
    assert replied.status_code == 202, replied.text
    back = await eventually(
        lambda: workflow.get(f"/v1/cases/{case['case_id']}", headers=agent),
        until=lambda r: r.json()["step"] == "completeness-check",
        timeout=10,
    )
    detail = back.json()
    assert detail["version"] == 4 and not detail["clock_paused"]
    assert detail["history"][-1]["data"]["actor"] == "citizen"
    seen = await eventually(
        lambda: tracking.get(f"/v1/track/{case['tracking_code']}?lang=en"),
        until=lambda r: r.json()["status"]["turn"] == "administration",
        timeout=5,
    )
    assert not seen.json()["clocks"]["clock_paused"]
