"""A retry with the same Idempotency-Key never creates a second case, however late the retry."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from services.intake.app import create_app
from tests.builders import make_case
from tests.conftest import Env, _client, intake_settings


async def _cases(env: Env) -> int:
    conn = await asyncpg.connect(env.database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM intake.cases"))
    finally:
        await conn.close()


async def test_a_retry_returns_the_same_case(intake: httpx.AsyncClient, env: Env) -> None:
    first = await intake.post("/v1/cases", json=make_case(), headers={"Idempotency-Key": "form-42"})
    again = await intake.post("/v1/cases", json=make_case(), headers={"Idempotency-Key": "form-42"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.json() == again.json()
    assert await _cases(env) == 1


async def test_concurrent_retries_create_one_case(intake: httpx.AsyncClient, env: Env) -> None:
    answers = await asyncio.gather(
        *[
            intake.post("/v1/cases", json=make_case(), headers={"Idempotency-Key": "double-click"})
            for _ in range(8)
        ]
    )
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    assert len({a.json()["tracking_code"] for a in answers}) == 1
    assert await _cases(env) == 1


async def test_a_retry_after_a_restart_returns_the_same_case(env: Env) -> None:
    async for client in _client(create_app(intake_settings(env))):
        first = (await client.post("/v1/cases", json=make_case(), headers={"Idempotency-Key": "k1"})).json()
    async for client in _client(create_app(intake_settings(env))):
        again = await client.post("/v1/cases", json=make_case(), headers={"Idempotency-Key": "k1"})
    assert again.status_code == 200 and again.json()["case_id"] == first["case_id"]
    assert await _cases(env) == 1


async def test_a_key_reused_for_a_different_request_is_refused(intake: httpx.AsyncClient, env: Env) -> None:
    await intake.post("/v1/cases", json=make_case(), headers={"Idempotency-Key": "k2"})
    other = await intake.post(
        "/v1/cases?lang=en", json=make_case(district="nord"), headers={"Idempotency-Key": "k2"}
    )
    assert other.status_code == 422
    assert "already used" in other.json()["detail"]
    assert await _cases(env) == 1


async def test_without_a_key_each_submission_is_a_new_case(intake: httpx.AsyncClient, env: Env) -> None:
    await intake.post("/v1/cases", json=make_case())
    await intake.post("/v1/cases", json=make_case())
    assert await _cases(env) == 2
