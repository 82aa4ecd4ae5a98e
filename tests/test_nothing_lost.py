"""An acknowledged case is never lost or duplicated: not when a service is killed, not when NATS or
PostgreSQL restarts, not when a message is redelivered."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import nats
import pytest

from shared.events import STREAM
from tests.builders import make_case
from tests.conftest import Env
from tests.processes import ServiceProcess, service_env
from tests.waiting import eventually, query, scalar

CASES = 60


async def _submit(client: httpx.AsyncClient, n: int) -> tuple[set[str], int]:
    """Submit n cases one by one; returns the acknowledged case ids and how many attempts failed."""
    acknowledged, failed = set(), 0
    for i in range(n):
        try:
            answer = await client.post("/v1/cases", json=make_case(floor_area_m2=i + 1), timeout=5)
        except httpx.HTTPError:
            failed += 1
            continue
        if answer.status_code == 201:
            acknowledged.add(answer.json()["case_id"])
        else:
            assert answer.status_code == 503, answer.text  # unavailable, never a 500
            failed += 1
    return acknowledged, failed


async def _stream_messages(nats_url: str) -> int:
    nc = await nats.connect(nats_url)
    try:
        return int((await nc.jetstream().stream_info(STREAM)).state.messages)
    finally:
        await nc.close()


async def _assert_everything_arrived_once(env: Env, acknowledged: set[str]) -> None:
    folded = await eventually(
        lambda: query(env.database_url, "SELECT case_id::text FROM tracking.cases"),
        until=lambda rows: len(rows) >= len(acknowledged),
        timeout=60,
    )
    in_intake = {r[0] for r in await query(env.database_url, "SELECT case_id::text FROM intake.cases")}
    assert acknowledged <= in_intake, "an acknowledged case is missing from intake"
    assert {r[0] for r in folded} == in_intake, "tracking does not show exactly the cases intake recorded"
    assert await scalar(env.database_url, "SELECT count(*) FROM tracking.history") == len(in_intake)
    assert await _stream_messages(env.nats_url) == len(in_intake), "an event is missing or doubled on the bus"
    assert (
        await scalar(env.database_url, "SELECT count(*) FROM intake.outbox WHERE published_at IS NULL") == 0
    )


def _processes(env: Env, tmp_path: Path) -> tuple[ServiceProcess, ServiceProcess]:
    variables = service_env(env.database_url, env.nats_url)
    return (
        ServiceProcess("services.intake.app", env=variables, log_dir=tmp_path),
        ServiceProcess("services.tracking.app", env=variables, log_dir=tmp_path),
    )


async def test_killing_intake_and_its_relay_mid_stream_loses_nothing(env: Env, tmp_path: Path) -> None:
    intake, tracking = _processes(env, tmp_path)
    intake.start(), tracking.start()
    try:
        async with httpx.AsyncClient(base_url=intake.url) as client:
            burst = asyncio.create_task(_submit(client, CASES))
            await eventually(
                lambda: scalar(env.database_url, "SELECT count(*) FROM intake.cases"),
                until=lambda n: n >= CASES // 3,
            )
            intake.kill()
            first, _ = await burst
            intake.start()
            second, _ = await _submit(client, CASES // 2)
        await _assert_everything_arrived_once(env, first | second)
        assert len(first) >= CASES // 3
    finally:
        intake.stop(), tracking.stop()


async def test_killing_tracking_while_it_folds_loses_nothing(env: Env, tmp_path: Path) -> None:
    intake, tracking = _processes(env, tmp_path)
    intake.start(), tracking.start()
    try:
        async with httpx.AsyncClient(base_url=intake.url) as client:
            acknowledged, failed = await _submit(client, CASES)
        assert failed == 0
        await eventually(
            lambda: scalar(env.database_url, "SELECT count(*) FROM tracking.cases"), until=lambda n: n >= 5
        )
        tracking.kill()
        tracking.start()
        await _assert_everything_arrived_once(env, acknowledged)
    finally:
        intake.stop(), tracking.stop()


async def test_a_nats_restart_delays_events_but_loses_none(env: Env, tmp_path: Path) -> None:
    intake, tracking = _processes(env, tmp_path)
    intake.start(), tracking.start()
    try:
        async with httpx.AsyncClient(base_url=intake.url) as client:
            before, _ = await _submit(client, 10)
            env.nats.stop(kill=True)
            # PostgreSQL is the record: submissions are still acknowledged while the bus is down.
            during, failed = await _submit(client, 10)
            assert failed == 0
            env.nats.start()  # the same store and port: a restart, not a new server
            after, _ = await _submit(client, 10)
        await _assert_everything_arrived_once(env, before | during | after)
    finally:
        intake.stop(), tracking.stop()


async def test_a_postgresql_restart_answers_503_then_recovers(env: Env, tmp_path: Path) -> None:
    intake, tracking = _processes(env, tmp_path)
    intake.start(), tracking.start()
    try:
        async with httpx.AsyncClient(base_url=intake.url) as client:
            before, _ = await _submit(client, 10)
            env.pg.stop()
            during, failed = await _submit(client, 3)
            assert (during, failed) == (set(), 3)
            env.pg.start()
            after = await eventually(lambda: _submit(client, 10), until=lambda r: len(r[0]) == 10)
        await _assert_everything_arrived_once(env, before | after[0])
    finally:
        intake.stop(), tracking.stop()


@pytest.mark.parametrize("times", [2, 5])
async def test_a_redelivered_event_is_folded_once(
    intake: httpx.AsyncClient, tracking: httpx.AsyncClient, env: Env, times: int
) -> None:
    code = (await intake.post("/v1/cases", json=make_case())).json()["tracking_code"]
    assert (await tracking.get(f"/v1/track/{code}")).status_code == 200
    # Publish the very same event again, as a relay would after the duplicate window, bypassing dedup.
    subject, body = (await query(env.database_url, "SELECT subject, envelope::text FROM intake.events"))[0]
    nc = await nats.connect(env.nats_url)
    try:
        for _ in range(times):
            await nc.jetstream().publish(subject, body.encode())
    finally:
        await nc.close()
    await eventually(
        lambda: scalar(env.database_url, "SELECT stream_seq FROM tracking.consumer_positions"),
        until=lambda seq: seq == times + 1,
    )
    assert await scalar(env.database_url, "SELECT count(*) FROM tracking.history") == 1
    assert (await tracking.get(f"/v1/track/{code}")).json()["version"] == 1


async def test_tracking_can_be_rebuilt_from_the_stream(intake: httpx.AsyncClient, env: Env) -> None:
    from services.tracking.app import create_app
    from services.tracking.rebuild import rebuild
    from tests.conftest import _client, tracking_settings

    codes = [(await intake.post("/v1/cases", json=make_case())).json()["tracking_code"] for _ in range(5)]
    async for client in _client(create_app(tracking_settings(env))):
        before = [(await client.get(f"/v1/track/{c}")).json() for c in codes]
    await rebuild(tracking_settings(env))
    assert await scalar(env.database_url, "SELECT count(*) FROM tracking.cases") == 0
    async for client in _client(create_app(tracking_settings(env))):
        after = [(await client.get(f"/v1/track/{c}")).json() for c in codes]
    assert after == before
    assert await scalar(env.database_url, "SELECT count(*) FROM tracking.history") == 5


async def test_a_malformed_message_is_set_aside_and_the_stream_goes_on(
    intake: httpx.AsyncClient, tracking: httpx.AsyncClient, env: Env
) -> None:
    nc = await nats.connect(env.nats_url)
    try:
        await nc.jetstream().publish("case.permis-construire.not-a-case.submitted", b'{"specversion": "0.3"}')
    finally:
        await nc.close()
    code = (await intake.post("/v1/cases", json=make_case())).json()["tracking_code"]
    assert (await tracking.get(f"/v1/track/{code}")).status_code == 200
    dead = await eventually(
        lambda: query(env.database_url, "SELECT subject, reason FROM tracking.dead_letters"),
        until=lambda rows: len(rows) == 1,
    )
    assert dead[0]["subject"] == "case.permis-construire.not-a-case.submitted"
    assert "not a Suivi event envelope" in dead[0]["reason"]
