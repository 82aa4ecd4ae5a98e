"""workflow's SQL: the case row (locked while a command runs), its events, notes and the queue."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

import asyncpg

from services.workflow.domain import CaseState
from shared.events import make_envelope, subject_for
from shared.events.workflow import WorkflowEvent
from shared.eventstore import NewEvent, append
from shared.procedures import Catalogue
from shared.telemetry import current_traceparent

SCHEMA = "workflow"


def _state(row: asyncpg.Record, catalogue: Catalogue) -> CaseState:
    procedure = catalogue.get(row["procedure"], row["procedure_version"])
    if procedure is None:
        raise LookupError(
            f"procedure {row['procedure']} v{row['procedure_version']} is missing from the catalogue"
        )
    return CaseState(
        case_id=row["case_id"],
        procedure=procedure,
        step=row["step"],
        version=row["version"],
        assignee=row["assignee"],
        legal_deadline=row["legal_deadline"],
        clock_paused_since=row["clock_paused_since"],
        deadline_state=row["deadline_state"],
        outcome=row["outcome"],
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


async def insert(conn: asyncpg.Connection, state: CaseState, *, submitted_at: Any) -> bool:
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
        submitted_at,
        state.legal_deadline,
    )
    return bool(inserted)


async def save(conn: asyncpg.Connection, state: CaseState) -> None:
    await conn.execute(
        "UPDATE workflow.cases SET step = $2, version = $3, assignee = $4, legal_deadline = $5, "
        "clock_paused_since = $6, deadline_state = $7, outcome = $8, updated_at = now() WHERE case_id = $1",
        state.case_id,
        state.step,
        state.version,
        state.assignee,
        state.legal_deadline,
        state.clock_paused_since,
        state.deadline_state,
        state.outcome,
    )


async def record(
    conn: asyncpg.Connection,
    state: CaseState,
    events: Sequence[WorkflowEvent],
    *,
    comment: str | None = None,
    reason: str | None = None,
) -> list[uuid.UUID]:
    """Append the events (each carries its version) and the free-text note of the last one."""
    new = []
    for event in events:
        envelope = make_envelope(
            event, case_id=state.case_id, procedure=state.procedure.code, traceparent=current_traceparent()
        )
        new.append(
            NewEvent(
                envelope=envelope,
                version=event.version,
                subject=subject_for(procedure=state.procedure.code, case_id=state.case_id, event=event),
            )
        )
    await append(conn, schema=SCHEMA, events=new)
    if new and (comment or reason):
        await conn.execute(
            "INSERT INTO workflow.notes(event_id, comment, reason) VALUES ($1, $2, $3)",
            new[-1].envelope.id,
            comment,
            reason,
        )
    return [e.envelope.id for e in new]


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


async def due_for_deadline_check(conn: asyncpg.Connection, *, today: date, warn_days: int) -> list[uuid.UUID]:
    rows = await conn.fetch(
        "SELECT case_id FROM workflow.cases WHERE outcome IS NULL AND clock_paused_since IS NULL "
        "AND legal_deadline IS NOT NULL AND ((legal_deadline < $1 AND deadline_state <> 'passed') "
        "OR (legal_deadline <= $1 + $2::int AND deadline_state = 'none')) ORDER BY legal_deadline LIMIT 500",
        today,
        warn_days,
    )
    return [r["case_id"] for r in rows]


async def log_personal_data_read(conn: asyncpg.Connection, *, case_id: uuid.UUID, agent: str) -> None:
    await conn.execute(
        "INSERT INTO workflow.personal_data_reads(case_id, agent) VALUES ($1, $2)", case_id, agent
    )
