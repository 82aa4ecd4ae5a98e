"""Legal deadlines: agents are warned before, and silence means acceptance exactly once, even with two
workflow replicas watching the same clock."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import date
from pathlib import Path

import httpx
import pytest

from services.workflow.clock import ManualClock, city_today
from services.workflow.service import check_deadlines
from tests.builders import make_case
from tests.conftest import Env, _client, reach_intake_in_process, workflow_app
from tests.waiting import eventually, query, scalar

CASES = 6


async def _events(env: Env, kind: str) -> list[str]:
    rows = await query(
        env.database_url,
        "SELECT case_id::text FROM workflow.events WHERE type = $1 ORDER BY 1",
        f"fr.suivi.case.{kind}.v1",
    )
    return [r[0] for r in rows]


async def test_silence_means_acceptance_once_with_two_replicas(
    env: Env, issuer: Path, intake: httpx.AsyncClient, tracking: httpx.AsyncClient, clock: ManualClock
) -> None:
    first = workflow_app(env, issuer, clock=clock, deadline_check_seconds=0.05)
    second = workflow_app(env, issuer, clock=clock, deadline_check_seconds=0.05)
    async for _ in _client(first):
        async for _ in _client(second):
            reach_intake_in_process(first, intake)
            cases = [(await intake.post("/v1/cases", json=make_case())).json() for _ in range(CASES)]
            await eventually(lambda: _events(env, "opened"), until=lambda ids: len(ids) == CASES)

            # Three days before the deadline (two months: 59 to 62 days, whatever today is), inside the 5-day warning.
            deadline = date.fromisoformat(cases[0]["legal_deadline"])
            clock.advance(days=(deadline - city_today(clock)).days - 3)
            await eventually(
                lambda: _events(env, "deadline-approaching"), until=lambda ids: len(ids) == CASES
            )
            clock.advance(days=10)  # past the deadline, nobody decided
            # Both replicas' watchers run, and we add two more passes racing them.
            await asyncio.gather(
                *(
                    check_deadlines(
                        app.state.runtime.pool, catalogue=app.state.catalogue, clock=clock, warn_days=5
                    )
                    for app in (first, second)
                )
            )
            await eventually(lambda: _events(env, "step-changed"), until=lambda ids: len(ids) >= CASES)
            await asyncio.sleep(0.5)  # let every watcher pass a few more times

    assert await _events(env, "deadline-approaching") == sorted(c["case_id"] for c in cases)
    assert await _events(env, "deadline-passed") == sorted(c["case_id"] for c in cases)
    assert await _events(env, "step-changed") == sorted(c["case_id"] for c in cases)
    assert (
        await scalar(env.database_url, "SELECT count(*) FROM workflow.cases WHERE outcome = 'accepted'")
        == CASES
    )
    seen = await eventually(
        lambda: tracking.get(f"/v1/track/{cases[0]['tracking_code']}?lang=en"),
        until=lambda r: r.json()["status"]["final"],
        timeout=10,
    )
    assert seen.json()["status"]["label"] == "Permit granted by silence"


async def test_a_case_waiting_for_the_citizen_does_not_lapse(
    env: Env, issuer: Path, intake: httpx.AsyncClient, clock: ManualClock, tokens: object
) -> None:
    app = workflow_app(env, issuer, clock=clock, deadline_check_seconds=3600)
    async for workflow in _client(app):
        reach_intake_in_process(app, intake)
        case = (await intake.post("/v1/cases", json=make_case())).json()
        await eventually(lambda: _events(env, "opened"), until=lambda ids: len(ids) == 1)
        headers = tokens("agent", "urbanisme")  # type: ignore[operator]
        for version, action in enumerate(("start-check", "request-documents"), start=1):
            answer = await workflow.post(
                f"/v1/cases/{case['case_id']}/actions",
                headers=headers,
                json={"action": action, "expected_version": version},
            )
            assert answer.status_code == 200, answer.text
        clock.advance(days=200)
        pool = app.state.runtime.pool
        assert await check_deadlines(pool, catalogue=app.state.catalogue, clock=clock, warn_days=5) == 0
        queue = (await workflow.get("/v1/queue", headers=headers)).json()
        assert queue["items"][0]["clock_paused"] and not queue["items"][0]["at_risk"]


async def test_the_queue_puts_cases_at_risk_first_and_flags_them(
    env: Env, issuer: Path, intake: httpx.AsyncClient, clock: ManualClock, tokens: object
) -> None:
    app = workflow_app(env, issuer, clock=clock, deadline_check_seconds=3600, warn_days=5)
    async for workflow in _client(app):
        works = (await intake.post("/v1/cases", json=make_case("declaration-prealable"))).json()  # 1 month
        permit = (await intake.post("/v1/cases", json=make_case())).json()  # 2 months
        await eventually(lambda: _events(env, "opened"), until=lambda ids: len(ids) == 2)
        clock.advance(days=27)
        queue = (await workflow.get("/v1/queue", headers=tokens("agent", "urbanisme"))).json()  # type: ignore[operator]
    first, second = queue["items"]
    assert (first["case_id"], second["case_id"]) == (works["case_id"], permit["case_id"])
    assert first["at_risk"] and first["days_left"] <= 5
    assert not second["at_risk"] and second["days_left"] > 25


async def test_a_case_that_cannot_be_loaded_is_skipped_and_named_and_the_others_are_decided(
    env: Env, issuer: Path, intake: httpx.AsyncClient, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    app = workflow_app(env, issuer, clock=clock, deadline_check_seconds=3600)
    async for _ in _client(app):
        cases = [(await intake.post("/v1/cases", json=make_case())).json() for _ in range(3)]
        await eventually(lambda: _events(env, "opened"), until=lambda ids: len(ids) == 3)
        broken = cases[0]["case_id"]
        # Its procedure version is not in this deployment's catalogue (say, a definition file not deployed).
        await query(
            env.database_url,
            "UPDATE workflow.cases SET procedure_version = 99 WHERE case_id = $1",
            uuid.UUID(broken),
        )
        clock.advance(days=70)
        with caplog.at_level(logging.ERROR, logger="services.workflow.service"):
            pool, catalogue = app.state.runtime.pool, app.state.catalogue
            recorded = await check_deadlines(pool, catalogue=catalogue, clock=clock, warn_days=5)

    assert recorded == 4  # the two others: deadline passed, then silence means acceptance
    assert await _events(env, "step-changed") == sorted(c["case_id"] for c in cases[1:])
    (logged,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert broken in logged.getMessage() and getattr(logged, "case_id", None) == broken
    assert "permis-construire v99 is missing" in logged.getMessage() and "Deploy" in logged.getMessage()
