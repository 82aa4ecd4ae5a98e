"""One Idempotency-Key helper for every writer: workflow's agent actions here (intake's submissions and
replies are in tests/intake), and the move of the keys each service kept in its own table."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from pathlib import Path

import httpx

import services.workflow.app
from shared.db import create_pool, migrate
from tests.conftest import Env, Tokens
from tests.waiting import query
from tests.workflow.test_agents import AGENT, act, open_case

WORKFLOW_MIGRATIONS = Path(services.workflow.app.__file__).parent / "migrations"


async def test_an_action_sent_twice_at_once_is_done_once(
    intake: httpx.AsyncClient, workflow: httpx.AsyncClient, tokens: Tokens
) -> None:
    case = await open_case(intake, workflow, tokens)
    headers = {**tokens(*AGENT), "Idempotency-Key": "click-1"}

    answers = await asyncio.gather(*[act(workflow, headers, case, "start-check", 1) for _ in range(6)])

    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    assert len({a.content for a in answers}) == 1
    assert sorted(a.headers.get("Idempotent-Replayed", "") for a in answers) == [""] + ["true"] * 5
    detail = (await workflow.get(f"/v1/cases/{case['case_id']}", headers=tokens(*AGENT))).json()
    assert detail["version"] == 2


async def test_the_same_key_on_two_cases_is_two_keys(
    intake: httpx.AsyncClient, workflow: httpx.AsyncClient, tokens: Tokens
) -> None:
    cases = [await open_case(intake, workflow, tokens) for _ in range(2)]
    headers = {**tokens(*AGENT), "Idempotency-Key": "click-1"}

    answers = [await act(workflow, headers, case, "start-check", 1) for case in cases]

    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert [a.json()["case_id"] for a in answers] == [c["case_id"] for c in cases]
    assert all("idempotent-replayed" not in a.headers for a in answers)


async def test_a_key_reused_for_another_action_is_refused(
    intake: httpx.AsyncClient, workflow: httpx.AsyncClient, tokens: Tokens
) -> None:
    case = await open_case(intake, workflow, tokens)
    headers = {**tokens(*AGENT), "Idempotency-Key": "click-2", "Accept-Language": "en"}
    assert (await act(workflow, headers, case, "start-check", 1)).status_code == 200

    other = await act(workflow, headers, case, "take", 2)

    assert other.status_code == 422
    assert other.json()["type"] == "error.idempotency_key_reused"
    assert "already used" in other.json()["detail"]


async def test_workflow_keys_move_to_the_shared_table_with_their_case(env: Env, tmp_path: Path) -> None:
    case_id = uuid.uuid4()
    response = {"case_id": str(case_id), "action": "take", "step": "received", "version": 2}
    shutil.copy(WORKFLOW_MIGRATIONS / "001_cases.sql", tmp_path / "001_cases.sql")
    pool = await create_pool(env.database_url)
    try:
        await migrate(pool, schema="workflow", directory=tmp_path, shared=("eventstore", "projection"))
        await pool.execute(
            "INSERT INTO workflow.idempotency_keys(key, agent, request_hash, response) "
            "VALUES ('click-1', 'claire', 'h', $1)",
            response,
        )
        await migrate(
            pool,
            schema="workflow",
            directory=WORKFLOW_MIGRATIONS,
            shared=("eventstore", "projection", "idempotency"),
        )
    finally:
        await pool.close()

    rows = await query(env.database_url, "SELECT * FROM workflow.idempotent_requests")
    assert [(r["scope"], r["key"], r["request_hash"], r["status"]) for r in rows] == [
        (f"action:claire:{case_id}", "click-1", "h", 200)
    ]
    assert json.loads(rows[0]["body"]) == response
    # The old table stays for one release, for replicas of the previous release during a rolling update.
    old = await query(env.database_url, "SELECT to_regclass('workflow.idempotency_keys') AS t")
    assert old[0]["t"] is not None
