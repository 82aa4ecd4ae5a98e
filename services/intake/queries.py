"""intake's SQL: a case, its applicant, its idempotency key and its first events, in one transaction;
a citizen's reply and its event, in another."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from services.intake.domain import Reply, Submission
from shared.eventstore import NewEvent, VersionConflict, append

SCHEMA = "intake"
# Concurrent replies to one case race for the case's next event version; the loser tries again.
REPLY_ATTEMPTS = 5


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


async def find_case_by_digest(pool: asyncpg.Pool, digest: str) -> asyncpg.Record | None:
    record: asyncpg.Record | None = await pool.fetchrow(
        "SELECT case_id, procedure FROM intake.cases WHERE tracking_code_digest = $1", digest
    )
    return record


async def find_reply_by_idempotency_key(
    pool: asyncpg.Pool, *, case_id: uuid.UUID, key: str
) -> asyncpg.Record | None:
    record: asyncpg.Record | None = await pool.fetchrow(
        "SELECT k.request_hash, r.reply_id, r.received_at FROM intake.reply_idempotency_keys k "
        "JOIN intake.replies r USING (reply_id) WHERE k.case_id = $1 AND k.key = $2",
        case_id,
        key,
    )
    return record


async def record_reply(
    pool: asyncpg.Pool,
    *,
    reply: Reply,
    events: Callable[[int], Sequence[NewEvent]],
    idempotency_key: str | None,
    request_hash: str,
) -> None:
    """Record the reply and `events(version)`, version being the case's next one in intake's events.

    Raises VersionConflict when other writers to the case kept winning the race for that version."""
    for attempt in range(1, REPLY_ATTEMPTS + 1):
        try:
            async with pool.acquire() as conn, conn.transaction():
                await _insert_reply(
                    conn, reply=reply, idempotency_key=idempotency_key, request_hash=request_hash
                )
                version = await conn.fetchval(
                    "SELECT coalesce(max(version), 0) + 1 FROM intake.events WHERE case_id = $1",
                    reply.case_id,
                )
                await append(conn, schema=SCHEMA, events=events(version))
            return
        except VersionConflict:
            if attempt == REPLY_ATTEMPTS:
                raise
            await asyncio.sleep(random.uniform(0, 0.02 * attempt))


async def _insert_reply(
    conn: asyncpg.Connection, *, reply: Reply, idempotency_key: str | None, request_hash: str
) -> None:
    await conn.execute(
        "INSERT INTO intake.replies(reply_id, case_id, message, documents, received_at) "
        "VALUES ($1, $2, $3, $4, $5)",
        reply.reply_id,
        reply.case_id,
        reply.message,
        reply.documents,
        reply.received_at,
    )
    if idempotency_key is not None:
        inserted = await conn.fetchval(
            "INSERT INTO intake.reply_idempotency_keys(case_id, key, request_hash, reply_id) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (case_id, key) DO NOTHING RETURNING true",
            reply.case_id,
            idempotency_key,
            request_hash,
            reply.reply_id,
        )
        if not inserted:
            raise DuplicateKey(idempotency_key)  # rolls the reply back
