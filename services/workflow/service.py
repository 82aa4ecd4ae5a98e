"""workflow's commands: each one loads the case, asks `domain` what happens, and records the events and the
new state together, at the version it read.

An agent's action names the version it saw (`expected_version`): it is read without a lock and written in
one statement that changes the case only if it is still at that version (`queries.save_and_record`), two
round trips and no transaction; a change that came in between makes it a 409, as the version check would
have under a lock. An action with an Idempotency-Key, or naming the case it duplicates, also claims the key
or share-locks the original: those run in a transaction, under the case's row lock."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

import asyncpg

from services.workflow import domain, queries
from services.workflow.clock import Clock, city_today
from services.workflow.schemas import ActionCreate
from shared import idempotency
from shared.auth import Agent
from shared.idempotency import Answer, Idempotent
from shared.procedures import Catalogue

log = logging.getLogger(__name__)


NotFound = domain.NotFound


def _hash(command: ActionCreate) -> str:
    # Unset fields added later (`duplicate_of`) are left out, so that a retry of a request recorded
    # before they existed still replays.
    return idempotency.fingerprint(
        command.model_dump(mode="json", exclude_unset=True)
        | {k: v for k, v in command.model_dump(mode="json").items() if k in _FIRST_FIELDS}
    )


# The fields of an action when idempotency keys were first recorded: always part of the fingerprint.
_FIRST_FIELDS = ("action", "expected_version", "comment", "reason", "assignee")


def _idempotent(
    key: str | None, *, agent: Agent, case_id: uuid.UUID, command: ActionCreate
) -> Idempotent | None:
    if key is None:
        return None
    # An agent's key is theirs, for one case: the same key on two cases is two keys.
    scope = f"action:{agent.id}:{case_id}"
    return Idempotent(schema=queries.SCHEMA, scope=scope, key=key, request_hash=_hash(command))


async def _replay(conn: asyncpg.Connection, request: Idempotent | None) -> dict[str, Any] | None:
    """The answer to this key's first request (a reused key raises `idempotency.KeyReused`, a 422)."""
    stored = await idempotency.claim(conn, request) if request else None
    return stored.body if stored else None


def _apply(
    state: domain.CaseState,
    command: ActionCreate,
    agent: Agent,
    clock: Clock,
    original: domain.CaseState | None = None,
) -> tuple[domain.CaseState, list[Any]]:
    now = clock.now()
    if command.action == domain.TAKE:
        return domain.take(state, agent, now=now)
    if command.action == domain.ASSIGN:
        return domain.assign(state, agent, assignee=command.assignee, now=now)
    return domain.move(
        state, action=command.action, actor=agent, now=now, reason=command.reason, duplicate_of=original
    )


async def _original(
    conn: asyncpg.Connection, command: ActionCreate, catalogue: Catalogue
) -> domain.CaseState | None:
    """The case a duplicate names, read under a share lock: it cannot close while this one points at it."""
    if command.duplicate_of is None:
        return None
    found = await conn.fetchrow(
        "SELECT case_id FROM workflow.cases WHERE case_id = $1 FOR SHARE", command.duplicate_of
    )
    original = await queries.load(conn, command.duplicate_of, catalogue) if found else None
    if original is None:
        raise domain.WorkflowError("workflow.duplicate_of_not_found", case_id=command.duplicate_of)
    return original


async def act(
    pool: asyncpg.Pool,
    *,
    catalogue: Catalogue,
    clock: Clock,
    case_id: uuid.UUID,
    agent: Agent,
    command: ActionCreate,
    idempotency_key: str | None,
) -> tuple[dict[str, Any], bool]:
    """Run an agent's action. Returns the answer and whether it is a replay of an earlier one."""
    if idempotency_key is None and command.duplicate_of is None:
        async with pool.acquire() as conn:
            new_state = await _act_at_version(conn, catalogue, clock, case_id, agent, command)
        answer = _answer(case_id, command, new_state)
    else:
        async with pool.acquire() as conn, conn.transaction():
            state = await queries.load(conn, case_id, catalogue, lock=True)
            if state is None:
                raise NotFound("workflow.case_not_found", case_id=case_id)
            domain.check_visible(state, agent)
            idempotent = _idempotent(idempotency_key, agent=agent, case_id=case_id, command=command)
            if (previous := await _replay(conn, idempotent)) is not None:
                return previous, True
            domain.check_version(state, command.expected_version)
            original = await _original(conn, command, catalogue)
            new_state, events = _apply(state, command, agent, clock, original)
            await queries.save_and_record(
                conn, new_state, events, read_at=state.version, comment=command.comment, reason=command.reason
            )
            answer = _answer(case_id, command, new_state)
            if idempotent:
                await idempotency.remember(conn, idempotent, Answer(status=200, body=answer))
    log.info(
        "agent %s did %s (now %s, version %d)",
        agent.id,
        command.action,
        new_state.step,
        new_state.version,
        extra={"case_id": str(case_id)},
    )
    return answer, False


async def _act_at_version(
    conn: asyncpg.Connection,
    catalogue: Catalogue,
    clock: Clock,
    case_id: uuid.UUID,
    agent: Agent,
    command: ActionCreate,
) -> domain.CaseState:
    """The action on the case as read (no lock), written only if the case is still at that version."""
    state = await queries.load(conn, case_id, catalogue)
    if state is None:
        raise NotFound("workflow.case_not_found", case_id=case_id)
    domain.check_visible(state, agent)
    domain.check_version(state, command.expected_version)
    new_state, events = _apply(state, command, agent, clock)
    if not await queries.save_and_record(
        conn, new_state, events, read_at=state.version, comment=command.comment, reason=command.reason
    ):
        # Another change came in between: the version the agent saw is not the case's any more (409).
        moved = await queries.load(conn, case_id, catalogue)
        if moved is None:
            raise NotFound("workflow.case_not_found", case_id=case_id)
        domain.check_version(moved, command.expected_version)
        raise RuntimeError(f"case {case_id} is still at version {state.version}, yet was not saved at it")
    return new_state


def _answer(case_id: uuid.UUID, command: ActionCreate, state: domain.CaseState) -> dict[str, Any]:
    return {
        "case_id": str(case_id),
        "action": command.action,
        "step": state.step,
        "version": state.version,
        "outcome": state.outcome,
        "assignee": state.assignee,
    }


async def check_deadlines(pool: asyncpg.Pool, *, catalogue: Catalogue, clock: Clock, warn_days: int) -> int:
    """Record what the passing of time means for each open case; exactly once, however many replicas run it.

    A case that cannot be loaded (its procedure version is not deployed) is logged and skipped: the
    others still get their warnings and tacit decisions."""
    today, recorded = city_today(clock), 0
    async with pool.acquire() as conn:
        due = await queries.due_for_deadline_check(
            conn, today=today, warn_days=warn_days, catalogue=catalogue
        )
        for case_id in due:
            try:
                recorded += await _check_deadline(
                    conn, case_id, catalogue=catalogue, clock=clock, warn_days=warn_days
                )
            except LookupError as exc:
                log.error(
                    "deadline of case %s not checked: %s. Deploy the definition file of that procedure "
                    "version (procedures/<code>/v<version>.yaml) and restart workflow; the next check "
                    "records what is due",
                    case_id,
                    exc,
                    extra={"case_id": str(case_id)},
                )
    return recorded


async def check_fix_checks(pool: asyncpg.Pool, *, catalogue: Catalogue, clock: Clock) -> int:
    """Ask the reporter of each street report "done" long enough ago whether it is really fixed
    (`FixCheckDue`, which notify and tracking act on); exactly once, however many replicas run it."""
    days = [
        step.ask_if_fixed_after_days
        for versions in catalogue.versions.values()
        for procedure in versions.values()
        for step in procedure.steps
        if step.ask_if_fixed_after_days is not None
    ]
    if not days:
        return 0
    recorded = 0
    async with pool.acquire() as conn:
        due = await queries.due_for_fix_check(conn, done_before=clock.now() - timedelta(days=min(days)))
        for case_id in due:
            async with conn.transaction():
                state = await queries.load(conn, case_id, catalogue, skip_locked=True)
                if state is None:
                    continue
                new_state, events = domain.fix_check_events(state, now=clock.now())
                if events:
                    await queries.save(conn, new_state)
                    await queries.record(conn, new_state, events)
                    recorded += len(events)
                    log.info("reporter asked if it is fixed", extra={"case_id": str(case_id)})
    return recorded


async def _check_deadline(
    conn: asyncpg.Connection, case_id: uuid.UUID, *, catalogue: Catalogue, clock: Clock, warn_days: int
) -> int:
    async with conn.transaction():
        # Another replica working on this case holds its lock: skip it, it is being handled.
        state = await queries.load(conn, case_id, catalogue, skip_locked=True)
        if state is None:
            return 0
        new_state, events = domain.deadline_events(state, now=clock.now(), warn_days=warn_days)
        if events:
            await queries.save(conn, new_state)
            await queries.record(conn, new_state, events)
            log.info(
                "deadline of case: %s", ", ".join(e.type for e in events), extra={"case_id": str(case_id)}
            )
    return len(events)
