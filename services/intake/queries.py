"""intake's SQL: a case, its applicant, its place and its first events, in one statement (its files'
rows after it, in the same transaction); a citizen's reply, its files' rows and its event, in one
transaction. An Idempotency-Key is recorded with what it did (`shared.idempotency`)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from services.intake.documents import Checked
from services.intake.domain import Reply, Submission
from services.intake.nearby import Place
from shared import idempotency
from shared.events import EventData, make_envelope, subject_for
from shared.eventstore import Guard, NewEvent, VersionConflict, append
from shared.idempotency import Answer, Idempotent
from shared.telemetry import current_traceparent

SCHEMA = "intake"
# Concurrent replies to one case race for the case's next event version; the loser tries again.
REPLY_ATTEMPTS = 5


async def record_submission(
    conn: asyncpg.Connection,
    *,
    submission: Submission,
    events: list[NewEvent],
    place: Place | None,
    answer: Answer,
    idempotent: Idempotent | None,
) -> bool:
    """The case, its applicant, its place (a street report's), its first events and, for a request with
    an Idempotency-Key, the key and `answer`: one statement, so one round trip, atomic without a
    transaction. Returns False, having written nothing, when the key was used already (`replay` it)."""
    s, applicant = submission, submission.request.applicant
    args: list[Any] = [
        s.case_id,
        s.tracking_code,
        s.event.tracking_code_digest,
        s.procedure.code,
        s.procedure.version,
        s.request.channel,
        s.data,
        s.submitted_at,
        s.legal_deadline,
        applicant.name,
        applicant.email,
        applicant.phone,
        applicant.language,
        applicant.notify_by or [],
    ]
    then = [_INSERT_CASE, _INSERT_APPLICANT]
    if place is not None:
        then.append(_insert_place(first=len(args) + 1))
        args += [place.procedure, place.category, place.point.latitude, place.point.longitude, place.district]
    claim = "SELECT true"
    if idempotent is not None:
        claim, claim_args = idempotency.claim_in_statement(idempotent, answer, first=len(args) + 1)
        args += claim_args
    return await append(conn, schema=SCHEMA, events=events, guard=Guard(claim, args, then=then))


# The rows of a submission, each written only if the statement's guard (the key's claim) returned a row.
_INSERT_CASE = (
    "INSERT INTO intake.cases(case_id, tracking_code, tracking_code_digest, procedure, procedure_version, "
    "channel, data, submitted_at, legal_deadline) SELECT $1::uuid, $2::text, $3::text, $4::text, $5::int, "
    "$6::text, $7::jsonb, $8::timestamptz, $9::date FROM guard"
)
_INSERT_APPLICANT = (
    "INSERT INTO intake.applicants(case_id, name, email, phone, language, notify_by) "
    "SELECT $1::uuid, $10::text, $11::text, $12::text, $13::text, $14::text[] FROM guard"
)


def _insert_place(*, first: int) -> str:
    p = [f"${first + i}" for i in range(5)]
    return (
        "INSERT INTO intake.report_places(case_id, procedure, category, latitude, longitude, district) "
        f"SELECT $1::uuid, {p[0]}::text, {p[1]}::text, {p[2]}::float8, {p[3]}::float8, {p[4]}::text FROM guard"
    )


async def get_case(pool: asyncpg.Pool, case_id: uuid.UUID) -> dict[str, Any] | None:
    row = await pool.fetchrow("SELECT * FROM intake.cases WHERE case_id = $1", case_id)
    return dict(row) if row else None


async def find_case_by_digest(pool: asyncpg.Pool, digest: str) -> asyncpg.Record | None:
    record: asyncpg.Record | None = await pool.fetchrow(
        "SELECT case_id, procedure, procedure_version, "
        "EXISTS (SELECT 1 FROM intake.erasures e WHERE e.case_id = c.case_id) AS erased "
        "FROM intake.cases c WHERE tracking_code_digest = $1",
        digest,
    )
    return record


async def record_documents(
    conn: asyncpg.Connection,
    *,
    case_id: uuid.UUID,
    documents: Sequence[Checked],
    reply_id: uuid.UUID | None = None,
) -> None:
    """The rows of files already in the object store, in the caller's transaction."""
    if not documents:
        return
    await conn.executemany(
        "INSERT INTO intake.documents(document_id, case_id, reply_id, field, filename, content_type, size, "
        "sha256, stored_key, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        [
            (
                d.document_id,
                case_id,
                reply_id,
                d.field,
                d.filename,
                d.content_type,
                d.size,
                d.sha256,
                d.key,
                i,
            )
            for i, d in enumerate(documents)
        ],
    )


async def get_document(pool: asyncpg.Pool, *, document_id: str, case_id: uuid.UUID) -> dict[str, Any] | None:
    """A file's row, if it is one of that case's."""
    row = await pool.fetchrow(
        "SELECT * FROM intake.documents WHERE document_id = $1 AND case_id = $2", document_id, case_id
    )
    return dict(row) if row else None


async def record_reply(
    pool: asyncpg.Pool,
    *,
    reply: Reply,
    events: Callable[[int], Sequence[NewEvent]],
    idempotent: Idempotent | None,
    answer: Answer,
    documents: Sequence[Checked] = (),
) -> tuple[Answer, bool]:
    """Record the reply and `events(version)`, version being the case's next one in intake's events;
    or, for a key already used, the answer it got. Returns the answer and whether it is a replay.

    Raises VersionConflict when other writers to the case kept winning the race for that version."""
    for attempt in range(1, REPLY_ATTEMPTS + 1):
        try:
            async with pool.acquire() as conn, conn.transaction():

                async def record() -> Answer:
                    await _insert_reply(conn, reply)
                    await record_documents(
                        conn, case_id=reply.case_id, documents=documents, reply_id=reply.reply_id
                    )
                    version = await next_version(conn, reply.case_id)
                    await append(conn, schema=SCHEMA, events=events(version))
                    return answer

                return await idempotency.once(conn, idempotent, record)
        except VersionConflict:
            if attempt == REPLY_ATTEMPTS:
                raise
            await asyncio.sleep(random.uniform(0, 0.02 * attempt))
    raise AssertionError("unreachable")


async def next_version(conn: asyncpg.Connection, case_id: uuid.UUID) -> int:
    """The version the case's next event in intake gets."""
    return int(
        await conn.fetchval(
            "SELECT coalesce(max(version), 0) + 1 FROM intake.events WHERE case_id = $1", case_id
        )
    )


async def lock_case(conn: asyncpg.Connection, case_id: uuid.UUID) -> None:
    """Take the case row's lock, so that this case's writers take turns for its next event version."""
    await conn.execute("SELECT 1 FROM intake.cases WHERE case_id = $1 FOR UPDATE", case_id)


async def append_event(conn: asyncpg.Connection, *, procedure: str, event: EventData) -> None:
    """Append one event of a case whose row `lock_case` holds (a rating, a fix check), at its next version."""
    case_id: uuid.UUID = event.case_id  # type: ignore[attr-defined]
    envelope = make_envelope(event, case_id=case_id, procedure=procedure, traceparent=current_traceparent())
    subject = subject_for(procedure=procedure, case_id=case_id, event=event)
    version = await next_version(conn, case_id)
    await append(conn, schema=SCHEMA, events=[NewEvent(envelope=envelope, subject=subject, version=version)])


async def _insert_reply(conn: asyncpg.Connection, reply: Reply) -> None:
    await conn.execute(
        "INSERT INTO intake.replies(reply_id, case_id, message, documents, received_at) "
        "VALUES ($1, $2, $3, $4, $5)",
        reply.reply_id,
        reply.case_id,
        reply.message,
        reply.documents,
        reply.received_at,
    )
