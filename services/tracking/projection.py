"""tracking's read-model writes: one function per event it folds (called from `consumers.py`)."""

from __future__ import annotations

import asyncpg

from shared.events import Envelope
from shared.events.intake import CaseSubmitted

SCHEMA = "tracking"
TABLES = ("history", "cases")


async def case_submitted(conn: asyncpg.Connection, envelope: Envelope, event: CaseSubmitted) -> None:
    await conn.execute(
        "INSERT INTO tracking.cases(case_id, tracking_code_digest, procedure, procedure_version, step, "
        "step_since, submitted_at, legal_deadline, version) VALUES ($1, $2, $3, $4, $5, $6, $6, $7, 1)",
        event.case_id,
        event.tracking_code_digest,
        event.procedure,
        event.procedure_version,
        event.first_step,
        event.submitted_at,
        event.legal_deadline,
    )
    await conn.execute(
        "INSERT INTO tracking.history(event_id, case_id, step, kind, occurred_at) "
        "VALUES ($1, $2, $3, $4, $5)",
        envelope.id,
        event.case_id,
        event.first_step,
        "submitted",
        event.submitted_at,
    )
