"""workflow's SQL: the case row (locked while a command runs), its events, notes and the queue.

The `cases` row is a snapshot of the fold of the case's events (`domain.evolve`), written in the same
transaction as them; `rebuild.py` recomputes it from `workflow.events`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import asyncpg

from services.workflow.domain import BrokenHistory, CaseState
from shared.events import make_envelope, parse, subject_for
from shared.events.workflow import WorkflowEvent
from shared.eventstore import Guard, NewEvent, append
from shared.procedures import Catalogue, Procedure
from shared.telemetry import current_traceparent

SCHEMA = "workflow"
# The columns of `cases` that are the fold of the events (all but `updated_at`).
SNAPSHOT_COLUMNS = (
    "case_id",
    "procedure",
    "procedure_version",
    "service",
    "step",
    "version",
    "assignee",
    "submitted_at",
    "legal_deadline",
    "clock_paused_since",
    "deadline_state",
    "outcome",
    "done_at",
    "done_version",
    "fix_check_state",
)


class MissingProcedure(LookupError):
    """A case's procedure version is not in this deployment's catalogue."""


def procedure_of(catalogue: Catalogue, code: str, version: int) -> Procedure:
    procedure = catalogue.get(code, version)
    if procedure is None:
        raise MissingProcedure(f"procedure {code} v{version} is missing from the catalogue")
    return procedure


def _state(row: asyncpg.Record, catalogue: Catalogue) -> CaseState:
    return CaseState(
        case_id=row["case_id"],
        procedure=procedure_of(catalogue, row["procedure"], row["procedure_version"]),
        step=row["step"],
        version=row["version"],
        assignee=row["assignee"],
        submitted_at=row["submitted_at"],
        legal_deadline=row["legal_deadline"],
        clock_paused_since=row["clock_paused_since"],
        deadline_state=row["deadline_state"],
        outcome=row["outcome"],
        service=row["service"],
        done_at=row["done_at"],
        done_version=row["done_version"],
        fix_check_state=row["fix_check_state"],
    )


async def load(
    conn: asyncpg.Connection,
    case_id: uuid.UUID,
    catalogue: Catalogue,
    *,
    lock: bool = False,
    skip_locked: bool = False,
) -> CaseState | None:
    suffix = " FOR UPDATE SKIP LOCKED" if skip_locked else (" FOR UPDATE" if lock else "")
    row = await conn.fetchrow(f"SELECT * FROM workflow.cases WHERE case_id = $1{suffix}", case_id)
    return _state(row, catalogue) if row else None


async def insert(conn: asyncpg.Connection, state: CaseState) -> bool:
    inserted = await conn.fetchval(
        "INSERT INTO workflow.cases(case_id, procedure, procedure_version, service, step, version, "
        "submitted_at, legal_deadline) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
        "ON CONFLICT (case_id) DO NOTHING RETURNING true",
        state.case_id,
        state.procedure.code,
        state.procedure.version,
        state.service,
        state.step,
        state.version,
        state.submitted_at,
        state.legal_deadline,
    )
    return bool(inserted)


SAVE = (
    "UPDATE workflow.cases SET step = $2, version = $3, assignee = $4, legal_deadline = $5, "
    "clock_paused_since = $6, deadline_state = $7, outcome = $8, done_at = $9, done_version = $10, "
    "fix_check_state = $11, updated_at = now() WHERE case_id = $1"
)


def _saved(state: CaseState) -> list[Any]:
    """`SAVE`'s parameters."""
    return [
        state.case_id,
        state.step,
        state.version,
        state.assignee,
        state.legal_deadline,
        state.clock_paused_since,
        state.deadline_state,
        state.outcome,
        state.done_at,
        state.done_version,
        state.fix_check_state,
    ]


async def save(conn: asyncpg.Connection, state: CaseState) -> None:
    await conn.execute(SAVE, *_saved(state))


def _new_events(state: CaseState, events: Sequence[WorkflowEvent]) -> list[NewEvent]:
    return [
        NewEvent(
            envelope=make_envelope(
                event,
                case_id=state.case_id,
                procedure=state.procedure.code,
                traceparent=current_traceparent(),
            ),
            version=event.version,
            subject=subject_for(procedure=state.procedure.code, case_id=state.case_id, event=event),
        )
        for event in events
    ]


async def record(
    conn: asyncpg.Connection,
    state: CaseState,
    events: Sequence[WorkflowEvent],
    *,
    comment: str | None = None,
    reason: str | None = None,
) -> list[uuid.UUID]:
    """Append the events (each carries its version) and the free-text note of the last one."""
    new = _new_events(state, events)
    await append(conn, schema=SCHEMA, events=new)
    if new and (comment or reason):
        await conn.execute(
            "INSERT INTO workflow.notes(event_id, comment, reason) VALUES ($1, $2, $3)",
            new[-1].envelope.id,
            comment,
            reason,
        )
    return [e.envelope.id for e in new]


# The case's new state ($2...$11), if it is still at the version it was read at ($12), and the note of
# its last event ($13 the event, $14 the comment, $15 the reason) if there is one.
_SAVED_AT_VERSION = SAVE.replace("WHERE case_id = $1", "WHERE case_id = $1 AND version = $12 RETURNING 1")
_NOTED = (
    "INSERT INTO workflow.notes(event_id, comment, reason) SELECT $13::uuid, $14::text, $15::text FROM guard "
    "WHERE $14::text IS NOT NULL OR $15::text IS NOT NULL"
)


async def save_and_record(
    conn: asyncpg.Connection,
    state: CaseState,
    events: Sequence[WorkflowEvent],
    *,
    read_at: int,
    comment: str | None = None,
    reason: str | None = None,
) -> bool:
    """The case's new state, its events and the note of the last one, in one statement, only if the case
    is still at version `read_at` (no lock needed: it is the expected-version check itself). Returns
    whether it was (False: another change came first)."""
    new = _new_events(state, events)
    guard = Guard(
        _SAVED_AT_VERSION,
        [*_saved(state), read_at, new[-1].envelope.id, comment or None, reason or None],
        then=(_NOTED,),
    )
    return await append(conn, schema=SCHEMA, events=new, guard=guard)


async def history(conn: asyncpg.Connection, case_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT e.version, e.type, e.envelope, n.comment, n.reason FROM workflow.events e "
        "LEFT JOIN workflow.notes n USING (event_id) WHERE e.case_id = $1 ORDER BY e.version",
        case_id,
    )
    return [dict(r) for r in rows]


async def queue(
    conn: asyncpg.Connection,
    *,
    services: list[str] | None,
    step: str | None,
    assignee: str | None,
    procedure: str | None,
    limit: int,
    offset: int,
) -> tuple[int, list[dict[str, Any]]]:
    where = ["outcome IS NULL"]
    args: list[Any] = []
    for column, value in (
        ("service", services),
        ("step", step),
        ("assignee", assignee),
        ("procedure", procedure),
    ):
        if value is None:
            continue
        args.append(value)
        where.append(
            f"{column} = ANY(${len(args)})" if isinstance(value, list) else f"{column} = ${len(args)}"
        )
    condition = " AND ".join(where)
    total = await conn.fetchval(f"SELECT count(*) FROM workflow.cases WHERE {condition}", *args)
    rows = await conn.fetch(
        f"SELECT * FROM workflow.cases WHERE {condition} "
        "ORDER BY clock_paused_since IS NOT NULL, legal_deadline NULLS LAST, submitted_at "
        f"LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}",
        *args,
        limit,
        offset,
    )
    return int(total), [dict(r) for r in rows]


async def due_for_deadline_check(
    conn: asyncpg.Connection, *, today: date, warn_days: int, catalogue: Catalogue
) -> list[uuid.UUID]:
    """Open cases whose deadline is near or past and not recorded yet, most urgent first. Cases whose
    procedure version is missing from the catalogue come last, so that they never crowd out the others."""
    known = [f"{code}:{version}" for code, versions in catalogue.versions.items() for version in versions]
    rows = await conn.fetch(
        "SELECT case_id FROM workflow.cases WHERE outcome IS NULL AND clock_paused_since IS NULL "
        "AND legal_deadline IS NOT NULL AND ((legal_deadline < $1 AND deadline_state <> 'passed') "
        "OR (legal_deadline <= $1 + $2::int AND deadline_state = 'none')) "
        "ORDER BY procedure || ':' || procedure_version <> ALL($3::text[]), legal_deadline LIMIT 500",
        today,
        warn_days,
        known,
    )
    return [r["case_id"] for r in rows]


async def due_for_fix_check(conn: asyncpg.Connection, *, done_before: datetime) -> list[uuid.UUID]:
    """Street reports "done" before `done_before` whose reporter was not asked yet if it is fixed
    (`domain.fix_check_events` applies each procedure's own number of days)."""
    rows = await conn.fetch(
        "SELECT case_id FROM workflow.cases WHERE fix_check_state = 'none' AND done_at <= $1 "
        "ORDER BY done_at LIMIT 500",
        done_before,
    )
    return [r["case_id"] for r in rows]


async def log_personal_data_read(
    conn: asyncpg.Connection, *, case_id: uuid.UUID, agent: str, what: Sequence[str]
) -> None:
    """Record that `agent` read these parts of the case's personal data (`applicant`, `form`, `replies`)."""
    await conn.execute(
        "INSERT INTO workflow.personal_data_reads(case_id, agent, what) VALUES ($1, $2, $3)",
        case_id,
        agent,
        list(what),
    )


def snapshot_of(state: CaseState) -> dict[str, Any]:
    """The `cases` row that records `state`."""
    return {
        "case_id": state.case_id,
        "procedure": state.procedure.code,
        "procedure_version": state.procedure.version,
        "service": state.service,
        "step": state.step,
        "version": state.version,
        "assignee": state.assignee,
        "submitted_at": state.submitted_at,
        "legal_deadline": state.legal_deadline,
        "clock_paused_since": state.clock_paused_since,
        "deadline_state": state.deadline_state,
        "outcome": state.outcome,
        "done_at": state.done_at,
        "done_version": state.done_version,
        "fix_check_state": state.fix_check_state,
    }


async def snapshot_row(conn: asyncpg.Connection, case_id: uuid.UUID) -> dict[str, Any] | None:
    """The stored snapshot of a case, locked until the end of the transaction."""
    row = await conn.fetchrow(
        f"SELECT {', '.join(SNAPSHOT_COLUMNS)} FROM workflow.cases WHERE case_id = $1 FOR UPDATE", case_id
    )
    return dict(row) if row else None


async def write_snapshot(conn: asyncpg.Connection, snapshot: dict[str, Any]) -> None:
    columns = ", ".join(SNAPSHOT_COLUMNS)
    values = ", ".join(f"${i}" for i in range(1, len(SNAPSHOT_COLUMNS) + 1))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in SNAPSHOT_COLUMNS[1:])
    await conn.execute(
        f"INSERT INTO workflow.cases({columns}) VALUES ({values}) "
        f"ON CONFLICT (case_id) DO UPDATE SET {updates}, updated_at = now()",
        *(snapshot[c] for c in SNAPSHOT_COLUMNS),
    )


async def case_ids_with_events(conn: asyncpg.Connection) -> list[uuid.UUID]:
    rows = await conn.fetch("SELECT DISTINCT case_id FROM workflow.events ORDER BY case_id")
    return [r["case_id"] for r in rows]


async def orphan_snapshots(conn: asyncpg.Connection) -> list[uuid.UUID]:
    """Case rows no event records (nothing workflow does writes one)."""
    rows = await conn.fetch(
        "SELECT case_id FROM workflow.cases c WHERE NOT EXISTS "
        "(SELECT 1 FROM workflow.events e WHERE e.case_id = c.case_id) ORDER BY case_id"
    )
    return [r["case_id"] for r in rows]


async def events_of(conn: asyncpg.Connection, case_id: uuid.UUID) -> list[WorkflowEvent]:
    """A case's events in version order, parsed (and upcast) as readers of the stream would."""
    rows = await conn.fetch(
        "SELECT envelope FROM workflow.events WHERE case_id = $1 ORDER BY version", case_id
    )
    events = []
    for row in rows:
        _, data = parse(json.dumps(row["envelope"]))
        if not isinstance(data, WorkflowEvent):
            raise BrokenHistory(f"{type(data).__name__} in workflow.events of case {case_id}")
        events.append(data)
    return events
