"""Who may do what: the rights matrix, role by endpoint, and tokens that are missing or wrong."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Tokens
from tests.workflow.test_agents import act, open_case

# (role, services, action) -> expected status, on a permit case in the step `review`.
MATRIX = [
    ("agent", ("urbanisme",), "take", 200),
    ("agent", ("urbanisme",), "accept", 200),
    ("agent", ("urbanisme",), "reject", 403),  # permits are refused by a supervisor
    ("agent", ("urbanisme",), "assign", 403),
    ("agent", ("voirie",), "take", 403),  # not their service
    ("agent", ("voirie",), "accept", 403),
    ("supervisor", ("urbanisme",), "reject", 200),
    ("supervisor", ("urbanisme",), "assign", 200),
    ("supervisor", ("etat-civil",), "assign", 403),
    ("admin", (), "reject", 200),
    ("admin", (), "assign", 200),
]


@pytest.mark.parametrize(("role", "services", "action", "status"), MATRIX)
async def test_the_rights_matrix_for_actions(
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    tokens: Tokens,
    role: str,
    services: tuple[str, ...],
    action: str,
    status: int,
) -> None:
    case = await open_case(intake, workflow, tokens)
    setup = tokens("supervisor", "urbanisme")
    await act(workflow, setup, case, "start-check", 1)
    await act(workflow, setup, case, "start-review", 2)
    extra: dict[str, Any] = {"reason": "Non conforme au PLU", "assignee": "agent-x"}
    answer = await act(workflow, tokens(role, *services), case, action, 3, **extra)
    assert answer.status_code == status, answer.text


@pytest.mark.parametrize(
    ("role", "services", "status"),
    [
        ("agent", ("urbanisme",), 200),
        ("agent", ("voirie",), 403),
        ("supervisor", ("voirie", "urbanisme"), 200),
        ("admin", (), 200),
    ],
)
async def test_the_rights_matrix_for_reading_a_case(
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    tokens: Tokens,
    role: str,
    services: tuple[str, ...],
    status: int,
) -> None:
    case = await open_case(intake, workflow, tokens)
    answer = await workflow.get(f"/v1/cases/{case['case_id']}", headers=tokens(role, *services))
    assert answer.status_code == status
    if status == 403:
        assert "urbanisme" in answer.json()["detail"] and "applicant" not in answer.text


@pytest.mark.parametrize("endpoint", ["GET /v1/queue", "GET /v1/cases/{id}", "POST /v1/cases/{id}/actions"])
@pytest.mark.parametrize("authorization", [None, "Bearer not-a-jwt", "Basic YWxhZGRpbjpvcGVuc2VzYW1l"])
async def test_every_endpoint_needs_a_valid_token(
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    tokens: Tokens,
    endpoint: str,
    authorization: str | None,
) -> None:
    case = await open_case(intake, workflow, tokens)
    method, path = endpoint.split()
    headers = {"Authorization": authorization} if authorization else {}
    answer = await workflow.request(
        method,
        path.replace("{id}", case["case_id"]),
        headers=headers,
        json={"action": "take", "expected_version": 1} if method == "POST" else None,
    )
    assert answer.status_code == 401
    assert "Bearer" in answer.headers["WWW-Authenticate"]


async def test_every_read_of_personal_data_is_logged(
    intake: httpx.AsyncClient, workflow: httpx.AsyncClient, tokens: Tokens, env: Any
) -> None:
    from tests.waiting import query

    case = await open_case(intake, workflow, tokens)
    await workflow.get(f"/v1/cases/{case['case_id']}", headers=tokens("agent", "urbanisme", agent="zoe"))
    reads = await query(
        env.database_url,
        "SELECT agent FROM workflow.personal_data_reads WHERE case_id = $1",
        __import__("uuid").UUID(case["case_id"]),
    )
    assert [r["agent"] for r in reads] == ["admin-urbanisme", "zoe"]
