"""tracking's read-model writes: one function per event it folds (called from `consumers.py`).

workflow's events are applied strictly in the case's version order: each is one statement that changes
the case only if it is at the version just before (`_applied`, the same rule as
`shared.projection.next_workflow_event`); one that comes before its predecessor is not folded yet (`Nak`:
the whole fold transaction rolls back) and comes back later; one at or below the version reached is a
duplicate and changes nothing. An event is one statement in the usual case, its history line included
(a case's history is an array in its row, `migrations/005_history_in_case.sql`), with no read before it: a rebuild folds the cases side by side (`fold_side_by_side`), each case's events
in order, the statements of many cases sent together.
"""

from __future__ import annotations

import uuid

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
from shared.projection import fold_side_by_side, is_workflow_event, next_workflow_event

SCHEMA = "tracking"
TABLES = ("cases",)

# An event changes its case's row only.
fold_side_by_side(SCHEMA, key=lambda envelope: envelope.subject)


SUBMITTED = (
    "INSERT INTO tracking.cases(case_id, tracking_code_digest, procedure, procedure_version, step, "
    "step_since, submitted_at, legal_deadline, service, facts, history) "
    "VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, ARRAY[ROW($10::uuid, $5, $11::text, $6)::tracking.history_entry])"
)


def _line(event_id: int, step: str, kind: int, at: int) -> str:
    """The SET clause appending a history line: its event id, kind and time are the statement's parameters
    of these numbers, its step is `step` (a parameter, `$3`, or the case's column, `step`)."""
    entry = f"ROW(${event_id}::uuid, {step}, ${kind}::text, ${at}::timestamptz)::tracking.history_entry"
    return f"history = history || {entry}"


async def case_submitted(conn: asyncpg.Connection, envelope: Envelope, event: CaseSubmitted) -> None:
    await conn.execute(
        SUBMITTED,
        event.case_id,
        event.tracking_code_digest,
        event.procedure,
        event.procedure_version,
        event.first_step,
        event.submitted_at,
        event.legal_deadline,
        event.service,
        event.facts,
        envelope.id,
        HistoryKind.SUBMITTED,
    )


# Each moves the case to the event's version ($1 the case, $2 the version) from the one just before, and
# answers the case's step if it did. Those with a history line append it in the same statement.
OPENED = (
    "UPDATE tracking.cases SET workflow_version = $2, legal_deadline = $3, updated_at = now() "
    "WHERE case_id = $1 AND workflow_version = $2 - 1 RETURNING step"
)
BUMPED = (
    "UPDATE tracking.cases SET workflow_version = $2, updated_at = now() "
    "WHERE case_id = $1 AND workflow_version = $2 - 1 RETURNING step"
)
STEP_CHANGED = (
    "UPDATE tracking.cases SET workflow_version = $2, step = $3, step_since = $4, clock_paused = $5, "
    "legal_deadline = $6, outcome = $7, duplicate_of = $8, updated_at = now(), "
    # A decision starts a new "done" the reporter may be asked about; a reopening keeps the last answer.
    "done_version = CASE WHEN $7::text IS NULL THEN done_version ELSE $2::int END, "
    "fix_asked_at = CASE WHEN $7::text IS NULL THEN fix_asked_at END, "
    "fix_answer = CASE WHEN $7::text IS NULL THEN fix_answer END, "
    f"{_line(9, '$3', 10, 4)} "
    "WHERE case_id = $1 AND workflow_version = $2 - 1 RETURNING step"
)
# The history line says the step the case was in when its deadline passed: the event keeps it there.
DEADLINE_PASSED = (
    f"UPDATE tracking.cases SET workflow_version = $2, updated_at = now(), {_line(3, 'step', 4, 5)} "
    "WHERE case_id = $1 AND workflow_version = $2 - 1 RETURNING step"
)
FIX_CHECK_DUE = (
    "UPDATE tracking.cases SET workflow_version = $2, updated_at = now(), "
    "fix_asked_at = CASE WHEN done_version = $3 THEN $4 ELSE fix_asked_at END "
    "WHERE case_id = $1 AND workflow_version = $2 - 1 RETURNING step"
)


async def case_opened(conn: asyncpg.Connection, envelope: Envelope, event: CaseOpened) -> None:
    step = await conn.fetchval(OPENED, event.case_id, event.version, event.legal_deadline)
    await _applied(conn, event.case_id, event.version, step)


async def case_assigned(conn: asyncpg.Connection, envelope: Envelope, event: CaseAssigned) -> None:
    # Who handles a case is not shown to the public; the event only moves the version on.
    await _bump(conn, case_id=event.case_id, version=event.version)


async def step_changed(conn: asyncpg.Connection, envelope: Envelope, event: StepChanged) -> None:
    step = await conn.fetchval(
        STEP_CHANGED,
        event.case_id,
        event.version,
        event.to_step,
        event.at,
        event.clock_paused,
        event.legal_deadline,
        event.outcome,
        event.duplicate_of,
        envelope.id,
        HistoryKind.STEP_CHANGED,
    )
    await _applied(conn, event.case_id, event.version, step)


async def deadline_approaching(
    conn: asyncpg.Connection, envelope: Envelope, event: DeadlineApproaching
) -> None:
    await _bump(conn, case_id=event.case_id, version=event.version)


async def deadline_passed(conn: asyncpg.Connection, envelope: Envelope, event: DeadlinePassed) -> None:
    step = await conn.fetchval(
        DEADLINE_PASSED, event.case_id, event.version, envelope.id, HistoryKind.DEADLINE_PASSED, event.at
    )
    await _applied(conn, event.case_id, event.version, step)


# Not workflow events: they do not move workflow_version. Once per event id is fold's business.
# The step a history line names is the one the case is in when the event is folded.
CITIZEN_REPLIED = f"UPDATE tracking.cases SET updated_at = now(), {_line(1, 'step', 2, 3)} WHERE case_id = $4 RETURNING true"
RATED = "UPDATE tracking.cases SET rated = true, updated_at = now() WHERE case_id = $1 RETURNING true"
FIX_CHECKED = (
    "UPDATE tracking.cases SET updated_at = now(), "
    f"fix_answer = CASE WHEN done_version = $2 THEN $3 ELSE fix_answer END, {_line(4, 'step', 5, 6)} "
    "WHERE case_id = $1 RETURNING step"
)


async def citizen_replied(conn: asyncpg.Connection, envelope: Envelope, event: CitizenReplied) -> None:
    found = await conn.fetchval(
        CITIZEN_REPLIED, envelope.id, HistoryKind.CITIZEN_REPLIED, event.replied_at, event.case_id
    )
    if found is None:
        raise Nak("the case is not folded yet")


async def case_rated(conn: asyncpg.Connection, envelope: Envelope, event: CaseRated) -> None:
    # The page only needs to know not to ask again.
    if await conn.fetchval(RATED, event.case_id) is None:
        raise Nak("the case is not folded yet")


async def fix_check_due(conn: asyncpg.Connection, envelope: Envelope, event: FixCheckDue) -> None:
    step = await conn.fetchval(FIX_CHECK_DUE, event.case_id, event.version, event.done_version, event.at)
    await _applied(conn, event.case_id, event.version, step)


async def fix_checked(conn: asyncpg.Connection, envelope: Envelope, event: FixChecked) -> None:
    # The answer to the question about one "done" (an older one's is history); the line is written anyway.
    kind = HistoryKind.FIX_CONFIRMED if event.fixed else HistoryKind.NOT_FIXED
    found = await conn.fetchval(
        FIX_CHECKED, event.case_id, event.done_version, event.fixed, envelope.id, kind, event.checked_at
    )
    if found is None:
        raise Nak("the case is not folded yet")


async def unknown_event(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """An event of a type this release does not know (a newer workflow): if it is a workflow event, it still
    moves the case's version on, so the events after it are not held up waiting for it."""
    if is_workflow_event(envelope):
        await _bump(conn, case_id=envelope.case_id, version=envelope.data["version"])


async def _bump(conn: asyncpg.Connection, *, case_id: uuid.UUID, version: int) -> None:
    await _applied(conn, case_id, version, await conn.fetchval(BUMPED, case_id, version))


async def _applied(conn: asyncpg.Connection, case_id: uuid.UUID, version: int, step: str | None) -> bool:
    """Whether a workflow event's statement moved the case to `version` (it answered the case's `step`).
    If not, the event is a duplicate (the case is past it already), or it is not folded yet (`Nak`)
    because the case or its previous version is not."""
    if step is not None:
        return True
    if await next_workflow_event(conn, table="tracking.cases", case_id=case_id, version=version):
        raise Nak("the case moved meanwhile")  # another replica's fold committed in between: again
    return False
