"""intake's SQL: a case, its applicant, its idempotency key and its first events, in one transaction."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from services.intake.domain import Submission
from shared.eventstore import NewEvent, append

SCHEMA = "intake"


class DuplicateKey(Exception):
    """Another request with the same Idempotency-Key won the race."""


async def record_submission(
    pool: asyncpg.Pool,
    *,
    submission: Submission,
    events: list[NewEvent],
    idempotency_key: str | None,
    request_hash: str,
) -> None:
    s, applicant = submission, submission.request.applicant
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO intake.cases(case_id, tracking_code, tracking_code_digest, procedure, "
            "procedure_version, channel, data, submitted_at, legal_deadline) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            s.case_id,
            s.tracking_code,
            s.event.tracking_code_digest,
            s.procedure.code,
            s.procedure.version,
            s.request.channel,
            s.data,
            s.submitted_at,
            s.legal_deadline,
        )
        await conn.execute(
            "INSERT INTO intake.applicants(case_id, name, email, phone, language) "
            "VALUES ($1, $2, $3, $4, $5)",
            s.case_id,
            applicant.name,
            applicant.email,
            applicant.phone,
            applicant.language,
        )
        if idempotency_key is not None:
            inserted = await conn.fetchval(
                "INSERT INTO intake.idempotency_keys(key, request_hash, case_id) VALUES ($1, $2, $3) "
                "ON CONFLICT (key) DO NOTHING RETURNING true",
                idempotency_key,
                request_hash,
                s.case_id,
            )
            if not inserted:
                raise DuplicateKey(idempotency_key)  # rolls the whole case back
        await append(conn, schema=SCHEMA, events=events)


async def find_by_idempotency_key(pool: asyncpg.Pool, key: str) -> asyncpg.Record | None:
    record: asyncpg.Record | None = await pool.fetchrow(
        "SELECT k.request_hash, c.* FROM intake.idempotency_keys k JOIN intake.cases c USING (case_id) "
        "WHERE k.key = $1",
        key,
    )
    return record


async def get_case(pool: asyncpg.Pool, case_id: uuid.UUID) -> dict[str, Any] | None:
    row = await pool.fetchrow("SELECT * FROM intake.cases WHERE case_id = $1", case_id)
    return dict(row) if row else None
