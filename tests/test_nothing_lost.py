"""An acknowledged case is never lost or duplicated: not when a service is killed, not when NATS or
PostgreSQL restarts, not when a message is redelivered."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import nats
import pytest

from devtools import dev_issuer
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
    # intake may hold a case more than was acknowledged (committed, then its answer lost): wait for all.
    in_intake = {r[0] for r in await query(env.database_url, "SELECT case_id::text FROM intake.cases")}
    folded = await eventually(
        lambda: query(env.database_url, "SELECT case_id::text FROM tracking.cases"),
        until=lambda rows: len(rows) >= len(in_intake),
        timeout=60,
    )
    assert acknowledged <= in_intake, "an acknowledged case is missing from intake"
    assert {r[0] for r in folded} == in_intake, "tracking does not show exactly the cases intake recorded"
    assert await scalar(env.database_url, "SELECT count(*) FROM tracking.cases, unnest(history)") == len(
        in_intake
    )
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


async def test_a_postgresql_restart_answers_503_then_recovers(own_env: Env, tmp_path: Path) -> None:
    env = own_env  # a server of its own: taking it down cannot take the rest of the suite down
    intake, tracking = _processes(env, tmp_path)
    intake.start(), tracking.start()
    try:
        async with httpx.AsyncClient(base_url=intake.url) as client:
            before, _ = await _submit(client, 10)
            env.pg.stop(mode="fast")  # every connection is cut at once: a real outage
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
    assert await scalar(env.database_url, "SELECT count(*) FROM tracking.cases, unnest(history)") == 1
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
    assert await scalar(env.database_url, "SELECT count(*) FROM tracking.cases, unnest(history)") == 5


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


async def test_a_long_postgresql_outage_of_the_readers_loses_no_case(
    env: Env, own_env: Env, issuer: Path, tmp_path: Path
) -> None:
    """intake keeps its own PostgreSQL; tracking's and workflow's is down far longer than the 12 deliveries
    JetStream once allowed, while citizens keep submitting. Afterwards every case is in both, once."""
    short = {
        "CONSUMER_RETRY_MAX_SECONDS": "0.5",
        "CONSUMER_ACK_WAIT_SECONDS": "5",
        "CONSUMER_POISON_ATTEMPTS": "1",  # a transient failure taken for a bad message would show at once
        "OIDC_ISSUER": dev_issuer.DEV_ISSUER,
        "OIDC_JWKS_FILE": str(issuer / dev_issuer.JWKS_FILE),
    }
    readers = service_env(own_env.database_url, env.nats_url, **short)
    intake = ServiceProcess(
        "services.intake.app", env=service_env(env.database_url, env.nats_url), log_dir=tmp_path
    )
    tracking = ServiceProcess("services.tracking.app", env=readers, log_dir=tmp_path)
    workflow = ServiceProcess("services.workflow.app", env=readers, log_dir=tmp_path)
    for service in (intake, tracking, workflow):
        service.start()
    try:
        async with httpx.AsyncClient(base_url=intake.url) as client:
            before, _ = await _submit(client, 10)
            await eventually(
                lambda: scalar(own_env.database_url, "SELECT count(*) FROM tracking.cases"),
                until=lambda n: n == 10,
            )
            own_env.pg.stop(mode="fast")
            during: set[str] = set()
            outage_ends = asyncio.get_running_loop().time() + 12
            while asyncio.get_running_loop().time() < outage_ends:
                acknowledged, failed = await _submit(client, 2)
                assert failed == 0  # intake's own database is up: citizens are not turned away
                during |= acknowledged
                await asyncio.sleep(0.5)
            ready = httpx.get(f"{tracking.url}/readyz", timeout=5)
            assert ready.status_code == 503 and "tracking" in ready.json()["lagging"], ready.text
            own_env.pg.start()
            after, _ = await _submit(client, 5)
        acknowledged = before | during | after
        in_tracking = await eventually(
            lambda: query(own_env.database_url, "SELECT case_id::text FROM tracking.cases"),
            until=lambda rows: len(rows) >= len(acknowledged),
            timeout=90,
        )
        in_workflow = await eventually(
            lambda: query(own_env.database_url, "SELECT case_id::text FROM workflow.cases"),
            until=lambda rows: len(rows) >= len(acknowledged),
            timeout=60,
        )
        assert {r[0] for r in in_tracking} == acknowledged, "tracking lost or invented a case"
        assert {r[0] for r in in_workflow} == acknowledged, "workflow did not open every case"
        opened = "SELECT count(*) FROM workflow.events WHERE type = 'fr.suivi.case.opened.v1'"
        assert await scalar(own_env.database_url, opened) == len(acknowledged)
        for reader in ("tracking", "workflow"):
            assert await scalar(own_env.database_url, f"SELECT count(*) FROM {reader}.dead_letters") == 0
        assert len(during) >= 20
        caught_up = await eventually(
            lambda: asyncio.to_thread(lambda: httpx.get(f"{tracking.url}/readyz", timeout=5).json()),
            until=lambda body: "lagging" not in body,
        )
        assert caught_up["ready"] is True
    finally:
        for service in (intake, tracking, workflow):
            service.stop()
