"""tracking's read-model writes: one function per event it folds (called from `consumers.py`).

workflow's events are applied strictly in the case's version order (`shared.projection.next_workflow_event`):
one that comes before its predecessor is not folded yet (`Nak`: the whole fold transaction rolls back) and
comes back later; one at or below the version reached is a duplicate and changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from services.tracking.schemas import HistoryKind
from shared.bus import Nak
from shared.events import Envelope
from shared.events.intake import CaseRated, CaseSubmitted, CitizenReplied, FixChecked
from shared.events.workflow import (
    CaseAssigned,
    CaseOpened,
    DeadlineApproaching,
    DeadlinePassed,
    FixCheckDue,
    StepChanged,
)
from shared.projection import is_workflow_event, next_workflow_event

SCHEMA = "tracking"
TABLES = ("history", "cases")


async def case_submitted(conn: asyncpg.Connection, envelope: Envelope, event: CaseSubmitted) -> None:
    await conn.execute(
        "INSERT INTO tracking.cases(case_id, tracking_code_digest, procedure, procedure_version, step, "
        "step_since, submitted_at, legal_deadline, service, facts) "
        "VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9)",
        event.case_id,
        event.tracking_code_digest,
        event.procedure,
        event.procedure_version,
        event.first_step,
        event.submitted_at,
        event.legal_deadline,
        event.service,
        event.facts,
    )
    await _history(
        conn,
        envelope,
        case_id=event.case_id,
        step=event.first_step,
        kind=HistoryKind.SUBMITTED,
        at=event.submitted_at,
    )


async def case_opened(conn: asyncpg.Connection, envelope: Envelope, event: CaseOpened) -> None:
    if await _next_workflow_event(conn, case_id=event.case_id, version=event.version) is None:
        return
    await conn.execute(
        "UPDATE tracking.cases SET workflow_version = $2, legal_deadline = $3, updated_at = now() "
        "WHERE case_id = $1",
        event.case_id,
        event.version,
        event.legal_deadline,
    )


async def case_assigned(conn: asyncpg.Connection, envelope: Envelope, event: CaseAssigned) -> None:
    # Who handles a case is not shown to the public; the event only moves the version on.
    if await _next_workflow_event(conn, case_id=event.case_id, version=event.version) is not None:
        await _bump(conn, case_id=event.case_id, version=event.version)


async def step_changed(conn: asyncpg.Connection, envelope: Envelope, event: StepChanged) -> None:
    if await _next_workflow_event(conn, case_id=event.case_id, version=event.version) is None:
        return
    await conn.execute(
        "UPDATE tracking.cases SET workflow_version = $2, step = $3, step_since = $4, clock_paused = $5, "
        "legal_deadline = $6, outcome = $7, duplicate_of = $8, updated_at = now(), "
        # A decision starts a new "done" the reporter may be asked about; a reopening keeps the last answer.
        "done_version = CASE WHEN $7::text IS NULL THEN done_version ELSE $2::int END, "
        "fix_asked_at = CASE WHEN $7::text IS NULL THEN fix_asked_at END, "
        "fix_answer = CASE WHEN $7::text IS NULL THEN fix_answer END "
        "WHERE case_id = $1",
        event.case_id,
        event.version,
        event.to_step,
        event.at,
        event.clock_paused,
        event.legal_deadline,
        event.outcome,
        event.duplicate_of,
    )
    await _history(
        conn, envelope, case_id=event.case_id, step=event.to_step, kind=HistoryKind.STEP_CHANGED, at=event.at
    )


async def deadline_approaching(
    conn: asyncpg.Connection, envelope: Envelope, event: DeadlineApproaching
) -> None:
    if await _next_workflow_event(conn, case_id=event.case_id, version=event.version) is not None:
        await _bump(conn, case_id=event.case_id, version=event.version)


async def deadline_passed(conn: asyncpg.Connection, envelope: Envelope, event: DeadlinePassed) -> None:
    case = await _next_workflow_event(conn, case_id=event.case_id, version=event.version)
    if case is None:
        return
    await _bump(conn, case_id=event.case_id, version=event.version)
    await _history(
        conn,
        envelope,
        case_id=event.case_id,
        step=case["step"],
        kind=HistoryKind.DEADLINE_PASSED,
        at=event.at,
    )


async def citizen_replied(conn: asyncpg.Connection, envelope: Envelope, event: CitizenReplied) -> None:
    # Not a workflow event: it does not move workflow_version. Once per event id is fold's business.
    case = await conn.fetchrow("SELECT step FROM tracking.cases WHERE case_id = $1 FOR UPDATE", event.case_id)
    if case is None:
        raise Nak("the case is not folded yet")
    await _history(
        conn,
        envelope,
        case_id=event.case_id,
        step=case["step"],
        kind=HistoryKind.CITIZEN_REPLIED,
        at=event.replied_at,
    )


async def case_rated(conn: asyncpg.Connection, envelope: Envelope, event: CaseRated) -> None:
    # Not a workflow event either; the page only needs to know not to ask again.
    rated = await conn.fetchval(
        "UPDATE tracking.cases SET rated = true, updated_at = now() WHERE case_id = $1 RETURNING true",
        event.case_id,
    )
    if rated is None:
        raise Nak("the case is not folded yet")


async def fix_check_due(conn: asyncpg.Connection, envelope: Envelope, event: FixCheckDue) -> None:
    if await _next_workflow_event(conn, case_id=event.case_id, version=event.version) is None:
        return
    await conn.execute(
        "UPDATE tracking.cases SET workflow_version = $2, updated_at = now(), "
        "fix_asked_at = CASE WHEN done_version = $3 THEN $4 ELSE fix_asked_at END WHERE case_id = $1",
        event.case_id,
        event.version,
        event.done_version,
        event.at,
    )


async def fix_checked(conn: asyncpg.Connection, envelope: Envelope, event: FixChecked) -> None:
    # Not a workflow event: the answer to the question about one "done" (an older one's is history).
    found = await conn.fetchval(
        "UPDATE tracking.cases SET updated_at = now(), "
        "fix_answer = CASE WHEN done_version = $2 THEN $3 ELSE fix_answer END "
        "WHERE case_id = $1 RETURNING true",
        event.case_id,
        event.done_version,
        event.fixed,
    )
    if found is None:
        raise Nak("the case is not folded yet")
    await _history(
        conn,
        envelope,
        case_id=event.case_id,
        step=await conn.fetchval("SELECT step FROM tracking.cases WHERE case_id = $1", event.case_id),
        kind=HistoryKind.FIX_CONFIRMED if event.fixed else HistoryKind.NOT_FIXED,
        at=event.checked_at,
    )


async def unknown_event(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """An event of a type this release does not know (a newer workflow): if it is a workflow event, it still
    moves the case's version on, so the events after it are not held up waiting for it."""
    if not is_workflow_event(envelope):
        return
    version = envelope.data["version"]
    if await _next_workflow_event(conn, case_id=envelope.case_id, version=version) is not None:
        await _bump(conn, case_id=envelope.case_id, version=version)


async def _next_workflow_event(
    conn: asyncpg.Connection, *, case_id: uuid.UUID, version: int
) -> asyncpg.Record | None:
    return await next_workflow_event(conn, table="tracking.cases", case_id=case_id, version=version)


async def _bump(conn: asyncpg.Connection, *, case_id: uuid.UUID, version: int) -> None:
    await conn.execute(
        "UPDATE tracking.cases SET workflow_version = $2, updated_at = now() WHERE case_id = $1",
        case_id,
        version,
    )


async def _history(
    conn: asyncpg.Connection,
    envelope: Envelope,
    *,
    case_id: uuid.UUID,
    step: str,
    kind: HistoryKind,
    at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO tracking.history(event_id, case_id, step, kind, occurred_at) "
        "VALUES ($1, $2, $3, $4, $5)",
        envelope.id,
        case_id,
        step,
        kind,
        at,
    )
