"""A retry with the same Idempotency-Key never creates a second case, however late the retry, and gets the
first answer back as it was (status and body)."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

import services.intake.app
from services.intake.app import create_app
from shared import idempotency, tracking_code
from shared.db import create_pool, migrate
from tests.builders import make_case
from tests.conftest import Env, _client, intake_settings

MIGRATIONS = Path(services.intake.app.__file__).parent / "migrations"


async def _cases(env: Env) -> int:
    conn = await asyncpg.connect(env.database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM intake.cases"))
    finally:
        await conn.close()


async def test_a_retry_gets_the_first_answer_again(intake: httpx.AsyncClient, env: Env) -> None:
    first = await intake.post("/v1/cases", json=make_case(), headers={"Idempotency-Key": "form-42"})
    again = await intake.post("/v1/cases", json=make_case(), headers={"Idempotency-Key": "form-42"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert "idempotent-replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.content == again.content
    assert await _cases(env) == 1


async def test_the_replay_is_the_first_answer_even_in_another_language(intake: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "form-43"}
    first = await intake.post("/v1/cases?lang=en", json=make_case(), headers=headers)
    again = await intake.post("/v1/cases?lang=fr", json=make_case(), headers=headers)
    assert first.json() == again.json()
    assert first.json()["status"] == "Application received"


async def test_concurrent_retries_create_one_case_and_get_one_answer(
    intake: httpx.AsyncClient, env: Env
) -> None:
    answers = await asyncio.gather(
        *[
            intake.post("/v1/cases", json=make_case(), headers={"Idempotency-Key": "double-click"})
            for _ in range(8)
        ]
    )
    assert [a.status_code for a in answers] == [201] * 8, [a.text for a in answers]
    assert len({a.content for a in answers}) == 1
    assert sorted(a.headers.get("Idempotent-Replayed", "") for a in answers) == [""] + ["true"] * 7
    assert await _cases(env) == 1


async def test_a_retry_after_a_restart_returns_the_same_case(env: Env) -> None:
    async for client in _client(create_app(intake_settings(env))):
        first = (await client.post("/v1/cases", json=make_case(), headers={"Idempotency-Key": "k1"})).json()
    async for client in _client(create_app(intake_settings(env))):
        again = await client.post("/v1/cases", json=make_case(), headers={"Idempotency-Key": "k1"})
    assert again.status_code == 201 and again.json() == first
    assert await _cases(env) == 1


async def test_a_key_reused_for_a_different_request_is_refused(intake: httpx.AsyncClient, env: Env) -> None:
    await intake.post("/v1/cases", json=make_case(), headers={"Idempotency-Key": "k2"})
    other = await intake.post(
        "/v1/cases?lang=en", json=make_case(district="nord"), headers={"Idempotency-Key": "k2"}
    )
    assert other.status_code == 422
    assert other.json()["type"] == "error.idempotency_key_reused"
    assert "already used" in other.json()["detail"]
    assert await _cases(env) == 1


async def test_a_key_reused_at_the_same_moment_is_refused_not_a_500(
    intake: httpx.AsyncClient, env: Env
) -> None:
    bodies = [make_case(), make_case(district="nord")] * 4
    answers = await asyncio.gather(
        *[intake.post("/v1/cases", json=body, headers={"Idempotency-Key": "k3"}) for body in bodies]
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] * 4 + [422] * 4, [a.text for a in answers]
    assert await _cases(env) == 1


async def test_a_refused_submission_does_not_use_up_its_key(intake: httpx.AsyncClient, env: Env) -> None:
    bad = make_case()
    bad["data"] = {}
    refused = await intake.post("/v1/cases", json=bad, headers={"Idempotency-Key": "k4"})
    assert refused.status_code == 422
    fixed = await intake.post("/v1/cases", json=make_case(), headers={"Idempotency-Key": "k4"})
    assert fixed.status_code == 201 and "idempotent-replayed" not in fixed.headers


async def test_without_a_key_each_submission_is_a_new_case(intake: httpx.AsyncClient, env: Env) -> None:
    await intake.post("/v1/cases", json=make_case())
    await intake.post("/v1/cases", json=make_case())
    assert await _cases(env) == 2


async def test_keys_recorded_before_the_shared_table_still_replay(env: Env, tmp_path: Path) -> None:
    """An installation upgraded from the per-service key tables keeps its keys (migration 011)."""
    case_id, reply_id = uuid.uuid4(), uuid.uuid4()
    code = tracking_code.generate()
    submitted = make_case()
    received_at = datetime(2026, 3, 4, 10, 11, 12, 345678, tzinfo=UTC)
    await _install_before_011(env, tmp_path)
    conn = await asyncpg.connect(env.database_url)
    try:
        await conn.execute(
            "INSERT INTO intake.cases VALUES ($1, $2, $3, 'permis-construire', 1, 'web', '{}', now(), NULL)",
            case_id,
            code,
            tracking_code.digest(code),
        )
        await conn.execute(
            "INSERT INTO intake.idempotency_keys(key, request_hash, case_id) VALUES ('old', $1, $2)",
            idempotency.fingerprint(submitted),
            case_id,
        )
        await conn.execute(
            "INSERT INTO intake.replies VALUES ($1, $2, 'Voici', '[]', $3)", reply_id, case_id, received_at
        )
        await conn.execute(
            "INSERT INTO intake.reply_idempotency_keys(case_id, key, request_hash, reply_id) "
            "VALUES ($1, 'old', $2, $3)",
            case_id,
            idempotency.fingerprint({"message": "Voici", "documents": []}),
            reply_id,
        )
    finally:
        await conn.close()

    async for client in _client(create_app(intake_settings(env))):
        again = await client.post("/v1/cases", json=submitted, headers={"Idempotency-Key": "old"})
        reply = await client.post(
            "/v1/replies",
            json={"tracking_code": code, "message": "Voici", "documents": []},
            headers={"Idempotency-Key": "old"},
        )

    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert (again.json()["case_id"], again.json()["tracking_code"]) == (str(case_id), code)
    assert reply.status_code == 202 and reply.headers["Idempotent-Replayed"] == "true"
    assert reply.json() == {"reply_id": str(reply_id), "received_at": "2026-03-04T10:11:12.345678Z"}
    assert await _cases(env) == 1


async def _install_before_011(env: Env, tmp_path: Path) -> None:
    """intake's schema as it was: migrations up to 010, without the shared key table."""
    for path in sorted(MIGRATIONS.glob("*.sql")):
        if path.name < "011":
            shutil.copy(path, tmp_path / path.name)
    pool = await create_pool(env.database_url)
    try:
        await migrate(pool, schema="intake", directory=tmp_path, shared=("eventstore", "projection"))
    finally:
        await pool.close()


async def test_a_retry_after_its_form_changed_still_gets_the_first_answer(env: Env, tmp_path: Path) -> None:
    """The form gained a required field between the first try and its retry: the retry is the request
    that was answered, so it gets that answer, not a 422 for the new field."""
    headers = {"Idempotency-Key": "before-the-new-form"}
    async for client in _client(create_app(intake_settings(env))):
        first = await client.post("/v1/cases", json=make_case(), headers=headers)
    assert first.status_code == 201, first.text

    procedures = tmp_path / "procedures"
    shutil.copytree(Path(services.intake.app.__file__).parents[2] / "procedures", procedures)
    form = procedures / "permis-construire"
    v2 = (form / "v1.yaml").read_text(encoding="utf-8").replace("version: 1\n", "version: 2\n", 1)
    v2 = v2.replace(
        "fields:\n",
        "fields:\n  - name: architect\n    type: string\n    max_length: 100\n    label: {fr: Architecte, en: Architect, ar: Architecte}\n",
        1,
    )
    (form / "v2.yaml").write_text(v2, encoding="utf-8")
    async for client in _client(create_app(intake_settings(env, procedures_dir=procedures))):
        fresh = await client.post("/v1/cases", json=make_case())
        again = await client.post("/v1/cases", json=make_case(), headers=headers)
    assert fresh.status_code == 422, "the new form does need its new field"
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert await _cases(env) == 1
