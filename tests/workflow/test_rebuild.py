"""workflow's cases are the fold of their events: after a scenario walking every path of every procedure,
with citizens' replies and tacit decisions, rebuilding every case from `workflow.events` gives exactly
the stored state; and the rebuild command repairs a snapshot that drifted."""

from __future__ import annotations

import asyncio
import sys
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from services.workflow import queries
from services.workflow.clock import ManualClock
from services.workflow.rebuild import rebuild, replay
from services.workflow.service import check_deadlines
from shared.procedures import Catalogue, Procedure, Role
from tests.builders import make_case
from tests.conftest import Env, Tokens, _client, reach_intake_in_process, workflow_app
from tests.waiting import eventually

REPLY = {"message": "Voici la pièce demandée.", "documents": ["https://depot.example.org/piece.pdf"]}


def paths(procedure: Procedure) -> list[list[str]]:
    """Every way from the first step to a final one, taking each transition at most once."""
    found: list[list[str]] = []

    def walk(step: str, used: frozenset[int], actions: list[str]) -> None:
        if procedure.step(step).outcome is not None:
            found.append(actions)
            return
        for i, t in enumerate(procedure.transitions):
            if t.from_ == step and i not in used:
                walk(t.to, used | {i}, [*actions, t.action])

    walk(procedure.first_step.code, frozenset(), [])
    return found


def by_citizen(procedure: Procedure, action: str) -> bool:
    return any(t.action == action and Role.CITIZEN in t.roles for t in procedure.transitions)


@dataclass
class Walk:
    """One case walked along one path: agents act, the citizen answers where the procedure lets them."""

    procedure: Procedure
    actions: list[str]
    case: dict[str, Any] = field(default_factory=dict)
    done: int = 0

    @property
    def next_is_citizens(self) -> bool:
        return self.done < len(self.actions) and by_citizen(self.procedure, self.actions[self.done])


@dataclass
class Scenario:
    workflow: httpx.AsyncClient
    intake: httpx.AsyncClient
    pool: asyncpg.Pool
    tokens: Tokens
    originals: int = 0  # the reports a duplicate names

    async def submit(self, procedure: Procedure) -> dict[str, Any]:
        answer = await self.intake.post("/v1/cases", json=make_case(procedure.code))
        assert answer.status_code == 201, answer.text
        case: dict[str, Any] = answer.json()
        return case

    async def version(self, case: dict[str, Any]) -> int:
        async def read() -> int | None:
            found = await self.pool.fetchval(
                "SELECT version FROM workflow.cases WHERE case_id = $1", uuid.UUID(case["case_id"])
            )
            return None if found is None else int(found)

        version = await eventually(read, until=lambda v: v is not None)
        assert version is not None
        return version

    async def act(self, procedure: Procedure, case: dict[str, Any], action: str, **extra: Any) -> None:
        headers = self.tokens("admin") if action != "take" else self.tokens("agent", procedure.service)
        answer = await self.workflow.post(
            f"/v1/cases/{case['case_id']}/actions",
            headers=headers,
            json={"action": action, "expected_version": await self.version(case), "reason": "motif", **extra},
        )
        assert answer.status_code == 200, answer.text

    async def reply(self, case: dict[str, Any], *, moves: bool = True) -> None:
        before = await self.version(case)
        answer = await self.intake.post("/v1/replies", json={"tracking_code": case["tracking_code"], **REPLY})
        assert answer.status_code == 202, answer.text
        if moves:
            after = await eventually(lambda: self.version(case), until=lambda v: v > before, timeout=10)
            assert after == before + 1

    async def advance(self, walk: Walk, *, until_citizen: bool) -> None:
        while walk.done < len(walk.actions):
            if walk.next_is_citizens:
                if until_citizen:
                    return
                await self.reply(walk.case)
            else:
                action, extra = walk.actions[walk.done], {}
                if {t.to for t in walk.procedure.transitions if t.action == action} == {"duplicate"}:
                    original = await self.submit(walk.procedure)  # a duplicate names an open original
                    self.originals += 1
                    await self.version(original)
                    extra["duplicate_of"] = original["case_id"]
                await self.act(walk.procedure, walk.case, action, **extra)
            walk.done += 1


async def _stored_and_rebuilt(pool: asyncpg.Pool, catalogue: Catalogue) -> list[tuple[Any, Any]]:
    pairs = []
    async with pool.acquire() as conn:
        for case_id in await queries.case_ids_with_events(conn):
            stored = await queries.snapshot_row(conn, case_id)
            events = await queries.events_of(conn, case_id)
            pairs.append((stored, queries.snapshot_of(replay(case_id, events, catalogue))))
    return pairs


async def _run_scenario(scenario: Scenario, clock: ManualClock, catalogue: Catalogue) -> dict[str, Any]:
    pool, warn = scenario.pool, 5
    walks = [Walk(p, actions) for p in catalogue.all_latest() for actions in paths(p)]
    timed = [p for p in catalogue.all_latest() if p.legal_deadline is not None]
    permit = catalogue.latest("permis-construire")
    assert permit is not None
    for walk in walks:
        walk.case = await scenario.submit(walk.procedure)
    idle = {p.code: await scenario.submit(p) for p in timed}  # left alone until their deadline
    waiting = await scenario.submit(permit)  # waits for the citizen through every deadline
    for i, walk in enumerate(walks):
        if i % 3 == 0:
            await scenario.act(walk.procedure, walk.case, "take")
        if i % 3 == 1:
            await scenario.act(walk.procedure, walk.case, "assign", assignee="agent-b")
        await scenario.advance(walk, until_citizen=True)
    for action in ("start-check", "request-documents"):
        await scenario.act(permit, waiting, action)

    clock.advance(days=3)  # the citizens take three days to answer: their clocks stood still
    for walk in walks:
        await scenario.advance(walk, until_citizen=False)
    await scenario.reply(idle["permis-construire"], moves=False)  # not asked: kept in intake only

    for days in (13, 11, 40):  # deadlines warn, pass, and silence decides
        clock.advance(days=days)
        await check_deadlines(pool, catalogue=catalogue, clock=clock, warn_days=warn)
    assert await check_deadlines(pool, catalogue=catalogue, clock=clock, warn_days=warn) == 0
    await scenario.reply(waiting)  # 67 days after the request: the deadline moves by as much
    return {"walks": walks, "idle": idle, "waiting": waiting}


async def test_every_case_rebuilt_from_its_events_equals_the_stored_one(
    env: Env, issuer: Path, intake: httpx.AsyncClient, clock: ManualClock, tokens: Tokens
) -> None:
    app = workflow_app(env, issuer, clock=clock, deadline_check_seconds=3600)
    async for workflow in _client(app):
        reach_intake_in_process(app, intake)
        pool, catalogue = app.state.runtime.pool, app.state.catalogue
        scenario = Scenario(workflow=workflow, intake=intake, pool=pool, tokens=tokens)
        cases = await _run_scenario(scenario, clock, catalogue)
        pairs = await _stored_and_rebuilt(pool, catalogue)
        report = await rebuild(pool, catalogue, write=False)
        kinds = await pool.fetch("SELECT envelope->'data' AS data, type FROM workflow.events")

    walks: list[Walk] = cases["walks"]
    assert len(pairs) == len(walks) + len(cases["idle"]) + 1 + scenario.originals == report.cases
    for stored, rebuilt in pairs:
        assert stored == rebuilt  # every column of the snapshot, the submission date included
    assert (report.differed, report.failed, report.orphans) == ({}, {}, [])
    assert all(walk.done == len(walk.actions) for walk in walks)

    # The scenario went everywhere: every final step, the citizens' replies, warnings, tacit decisions.
    states = {s["case_id"]: s for s, _ in pairs}
    reached = {(s["procedure"], s["step"]) for s in states.values()}
    finals = {(p.code, s.code) for p in catalogue.all_latest() for s in p.steps if s.outcome}
    assert finals <= reached
    by_type = [r["type"].split(".")[3] for r in kinds]
    assert by_type.count("deadline-approaching") >= 1 and by_type.count("deadline-passed") >= 3
    tacit = [r["data"] for r in kinds if r["data"].get("tacit")]
    assert {d["to_step"] for d in tacit} == {"tacitly-accepted"} and len(tacit) == 2
    assert len([r for r in kinds if r["data"].get("actor") == "citizen"]) >= 10
    waiting = states[uuid.UUID(cases["waiting"]["case_id"])]
    due = date.fromisoformat(cases["waiting"]["legal_deadline"]) + timedelta(days=67)
    assert waiting["legal_deadline"] == due and waiting["clock_paused_since"] is None


async def test_the_rebuild_command_repairs_a_snapshot_that_drifted(
    env: Env, issuer: Path, intake: httpx.AsyncClient, clock: ManualClock, tokens: Tokens
) -> None:
    app = workflow_app(env, issuer, clock=clock, deadline_check_seconds=3600)
    async for workflow in _client(app):
        reach_intake_in_process(app, intake)
        pool, catalogue = app.state.runtime.pool, app.state.catalogue
        permit = catalogue.latest("permis-construire")
        scenario = Scenario(workflow=workflow, intake=intake, pool=pool, tokens=tokens)
        cases = [await scenario.submit(permit) for _ in range(3)]
        for action in ("take", "start-check", "request-documents"):
            await scenario.act(permit, cases[0], action)
        await scenario.version(cases[2])
        before = await _stored_and_rebuilt(pool, catalogue)

        drifted, lost = uuid.UUID(cases[0]["case_id"]), uuid.UUID(cases[1]["case_id"])
        await pool.execute(
            "UPDATE workflow.cases SET step = 'review', assignee = NULL, clock_paused_since = NULL "
            "WHERE case_id = $1",
            drifted,
        )
        await pool.execute("DELETE FROM workflow.cases WHERE case_id = $1", lost)

        checked = await _command(env, "--check")
        assert checked.returncode == 1, checked.stderr
        assert f"case {drifted}: step, assignee, clock_paused_since differed" in checked.stdout
        assert f"case {lost}: (missing) differed" in checked.stdout
        assert "3 cases folded from workflow.events: 2 differed" in checked.stdout
        assert await pool.fetchval("SELECT count(*) FROM workflow.cases") == 2  # --check wrote nothing

        repaired = await _command(env)
        assert repaired.returncode == 0, repaired.stderr
        assert "2 differed from the stored snapshot (rewrote them)" in repaired.stdout
        assert await _stored_and_rebuilt(pool, catalogue) == before
        again = await _command(env, "--check")
        assert again.returncode == 0 and "0 differed" in again.stdout, again.stdout
        # workflow goes on from the repaired state.
        await scenario.reply(cases[0])
        step = await pool.fetchval("SELECT step FROM workflow.cases WHERE case_id = $1", drifted)
        assert step == "completeness-check"


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


async def _command(env: Env, *args: str) -> Ran:
    """`python -m services.workflow.rebuild`, as an operator runs it, while workflow keeps running."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.workflow.rebuild",
        *args,
        env=env.variables(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())
