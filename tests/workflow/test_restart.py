"""A restart of workflow in the middle of a burst of submissions: every case opened exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import nats

from devtools import dev_issuer
from shared.events import STREAM
from tests.conftest import Env
from tests.processes import ServiceProcess, service_env
from tests.test_nothing_lost import _submit
from tests.waiting import eventually, query, scalar

CASES = 60


async def _opened_on_the_bus(nats_url: str) -> int:
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().stream_info(STREAM, subjects_filter="case.*.*.opened")
        return sum((info.state.subjects or {}).values())
    finally:
        await nc.close()


async def test_killing_workflow_mid_burst_opens_every_case_once(
    env: Env, issuer: Path, tmp_path: Path
) -> None:
    variables = service_env(
        env.database_url,
        env.nats_url,
        OIDC_ISSUER=dev_issuer.DEV_ISSUER,
        OIDC_JWKS_FILE=str(issuer / dev_issuer.JWKS_FILE),
    )
    intake = ServiceProcess("services.intake.app", env=variables, log_dir=tmp_path).start()
    workflow = ServiceProcess("services.workflow.app", env=variables, log_dir=tmp_path).start()
    try:
        async with httpx.AsyncClient(base_url=intake.url) as client:
            burst = asyncio.create_task(_submit(client, CASES))
            await eventually(
                lambda: scalar(env.database_url, "SELECT count(*) FROM workflow.cases"),
                until=lambda n: n >= 5,
            )
            workflow.kill()
            acknowledged, failed = await burst
            workflow.start()
        assert failed == 0 and len(acknowledged) == CASES
        opened = await eventually(
            lambda: query(env.database_url, "SELECT case_id::text FROM workflow.events WHERE version = 1"),
            until=lambda rows: len(rows) >= CASES,
            timeout=60,
        )
        assert sorted(r[0] for r in opened) == sorted(acknowledged)
        assert await scalar(env.database_url, "SELECT count(*) FROM workflow.cases") == CASES
        await eventually(lambda: _opened_on_the_bus(env.nats_url), until=lambda n: n >= CASES)
        assert await _opened_on_the_bus(env.nats_url) == CASES
    finally:
        intake.stop(), workflow.stop()
