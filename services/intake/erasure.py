"""Erasing a case's personal data (RGPD, article 17), everywhere Suivi keeps it, while the case's history,
its events and the statistics remain.

Two ways in: an admin's request (`POST /v1/admin/cases/{case_id}/erasure`, the citizen's right to
erasure) and the end of the procedure's retention period (`retention.months` in its definition, counted
from the decision; `sweep`, every `INTAKE_RETENTION_SWEEP_SECONDS`).

In one transaction, under the case's lock: the applicant (name, e-mail, phone) is deleted, the form keeps
only its public facts (what the bus already carries: category, district...), the replies', rating's and
fix check's texts are emptied, the exact place of a report is deleted, the documents' rows are deleted and
their stored keys queued, and `CaseErased` is appended (the outbox relays it: notify cancels the case's
unsent messages, the city's other systems learn of it). After the commit, each queued object is deleted
from the object store; what an unavailable store leaves queued is deleted by the next sweep. Erasing twice
changes nothing. Nothing personal ever went on the bus, into tracking, stats or the logs.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

import asyncpg
from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, ConfigDict, Field

from services.intake import queries
from services.intake.deps import CatalogueDep, CurrentAdmin, Pool
from services.intake.domain import public_facts
from shared.bus import is_transient, raise_if_cancelling
from shared.events.intake import CaseErased, ErasureReason
from shared.http import ApiError
from shared.objectstore import ObjectStore, ObjectStoreError
from shared.procedures import Catalogue
from shared.telemetry import meter

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/admin")
erasures_counter = meter.create_counter(
    "suivi.erasures", unit="{case}", description="Cases whose personal data was erased, by reason"
)
SWEEP_BATCH = 100


class ErasureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reference: str | None = Field(
        default=None,
        max_length=100,
        pattern=r"^[\w./ -]+$",
        description="your ticket or letter number (e.g. `RGPD-2026-0042`), kept in intake with the erasure; "
        "never the person's name",
    )


class Erasure(BaseModel):
    case_id: uuid.UUID
    reason: Literal["request", "retention"]
    erased_at: datetime
    reference: str | None
    documents_deleted: int = Field(description="files deleted from the object store now")
    documents_pending: int = Field(
        description="files the object store could not delete now: the retention sweep deletes them"
    )
    already: bool = Field(description="the case had been erased before: nothing changed")


async def erase(
    conn: asyncpg.Connection,
    catalogue: Catalogue,
    case_id: uuid.UUID,
    *,
    reason: ErasureReason,
    reference: str | None = None,
    by: str | None = None,
    at: datetime | None = None,
) -> tuple[asyncpg.Record, bool] | None:
    """Erase the case's personal data, in the caller's transaction. Returns the erasure's row and whether
    it was done now (False: erased before, nothing changed), or None for an unknown case."""
    case = await conn.fetchrow(
        "SELECT case_id, procedure, procedure_version, data FROM intake.cases WHERE case_id = $1 FOR UPDATE",
        case_id,
    )
    if case is None:
        return None
    before = await conn.fetchrow("SELECT * FROM intake.erasures WHERE case_id = $1", case_id)
    if before is not None:
        return before, False
    at = at or datetime.now(UTC)
    procedure = catalogue.get(case["procedure"], case["procedure_version"])
    # What the bus already carries (its public facts) is all the form keeps; with no definition to say
    # which fields are public, nothing of it.
    kept = public_facts(procedure, case["data"]) if procedure is not None else {}
    await conn.execute("UPDATE intake.cases SET data = $2 WHERE case_id = $1", case_id, kept)
    await conn.execute("DELETE FROM intake.applicants WHERE case_id = $1", case_id)
    await conn.execute("DELETE FROM intake.report_places WHERE case_id = $1", case_id)
    await conn.execute(
        "UPDATE intake.replies SET message = '', documents = '[]'::jsonb WHERE case_id = $1", case_id
    )
    await conn.execute("UPDATE intake.ratings SET comment = NULL WHERE case_id = $1", case_id)
    await conn.execute("UPDATE intake.fix_checks SET comment = NULL WHERE case_id = $1", case_id)
    await conn.execute(
        "INSERT INTO intake.erased_objects(stored_key, case_id) "
        "SELECT stored_key, case_id FROM intake.documents WHERE case_id = $1 ON CONFLICT DO NOTHING",
        case_id,
    )
    await conn.execute("DELETE FROM intake.documents WHERE case_id = $1", case_id)
    row = await conn.fetchrow(
        "INSERT INTO intake.erasures(case_id, reason, reference, erased_by, erased_at) "
        "VALUES ($1, $2, $3, $4, $5) RETURNING *",
        case_id,
        reason,
        reference,
        by,
        at,
    )
    await queries.append_event(
        conn, procedure=case["procedure"], event=CaseErased(case_id=case_id, reason=reason, erased_at=at)
    )
    return row, True


async def delete_objects(
    pool: asyncpg.Pool, store: ObjectStore, *, case_id: uuid.UUID | None = None
) -> tuple[int, int]:
    """Delete the queued objects (of one case, or all); returns (deleted, still queued)."""
    rows = await pool.fetch(
        "SELECT stored_key, case_id FROM intake.erased_objects WHERE $1::uuid IS NULL OR case_id = $1",
        case_id,
    )
    deleted = 0
    for row in rows:
        try:
            await store.delete(row["stored_key"])
        except ObjectStoreError as exc:
            log.warning(
                "could not delete an erased case's file from %s (%s); the retention sweep tries again",
                store.where,
                exc,
                extra={"case_id": str(row["case_id"])},
            )
            continue
        await pool.execute("DELETE FROM intake.erased_objects WHERE stored_key = $1", row["stored_key"])
        deleted += 1
    return deleted, len(rows) - deleted


def _store(request: Request) -> ObjectStore:
    store: ObjectStore = request.app.state.documents
    return store


@router.post(
    "/cases/{case_id}/erasure",
    response_model=Erasure,
    responses={
        403: {"description": "The token is an agent's, not an admin's."},
        404: {"description": "intake has no such case."},
    },
)
async def erase_on_request(
    case_id: uuid.UUID,
    request: Request,
    pool: Pool,
    catalogue: CatalogueDep,
    admin: CurrentAdmin,
    body: Annotated[ErasureRequest | None, Body()] = None,
) -> Erasure:
    """Erase a case's personal data now, for the citizen's right to erasure (an admin's token). The
    applicant, the form's non-public answers, the replies' and comments' texts, the exact place and the
    documents are gone for good; the case's history, its events and the statistics remain, and the
    city's other systems get `CaseErased`. Erasing again answers the first erasure (`already: true`)."""
    reference = body.reference if body else None
    async with pool.acquire() as conn, conn.transaction():
        done = await erase(conn, catalogue, case_id, reason="request", reference=reference, by=admin.id)
    if done is None:
        raise ApiError("intake.case_not_found", status=404, case_id=case_id)
    row, now = done
    deleted, pending = await delete_objects(pool, _store(request), case_id=case_id)
    if now:
        erasures_counter.add(1, {"reason": "request"})
        log.info(
            "personal data erased on request (reference %s), %d file(s) deleted, %d left to the sweep",
            reference or "none",
            deleted,
            pending,
            extra={"case_id": str(case_id)},
        )
    return Erasure(
        case_id=case_id,
        reason=row["reason"],
        erased_at=row["erased_at"],
        reference=row["reference"],
        documents_deleted=deleted,
        documents_pending=pending,
        already=not now,
    )


async def due(pool: asyncpg.Pool, catalogue: Catalogue, now: datetime, limit: int) -> list[uuid.UUID]:
    """Decided (and still final), not erased cases whose procedure's retention has ended at `now`,
    oldest first. Calendar months, as PostgreSQL adds them (31 January + 1 month: 28 or 29 February)."""
    kept = [
        (p.code, p.version, p.retention.months)
        for versions in catalogue.versions.values()
        for p in versions.values()
        if p.retention is not None
    ]
    rows = await pool.fetch(
        "SELECT c.case_id FROM intake.decisions d JOIN intake.cases c USING (case_id) "
        "JOIN unnest($1::text[], $2::int[], $3::int[]) AS r(procedure, version, months) "
        "  ON r.procedure = c.procedure AND r.version = c.procedure_version "
        "LEFT JOIN intake.erasures e USING (case_id) LEFT JOIN intake.steps s USING (case_id) "
        "WHERE e.case_id IS NULL AND (s.case_id IS NULL OR s.outcome IS NOT NULL) "
        "  AND d.decided_at + make_interval(months => r.months) <= $4 "
        "ORDER BY d.decided_at LIMIT $5",
        [k[0] for k in kept],
        [k[1] for k in kept],
        [k[2] for k in kept],
        now,
        limit,
    )
    return [r["case_id"] for r in rows]


async def sweep(
    pool: asyncpg.Pool, store: ObjectStore, catalogue: Catalogue, *, now: datetime | None = None
) -> int:
    """Erase every case whose retention has ended, and delete the files an earlier erasure left queued.
    Returns how many cases were erased. Safe beside other replicas: each erasure takes the case's lock."""
    now = now or datetime.now(UTC)
    erased = 0
    for case_id in await due(pool, catalogue, now, SWEEP_BATCH):
        async with pool.acquire() as conn, conn.transaction():
            done = await erase(conn, catalogue, case_id, reason="retention", at=now)
        if done is not None and done[1]:
            erased += 1
            erasures_counter.add(1, {"reason": "retention"})
            log.info("personal data erased: the retention period ended", extra={"case_id": str(case_id)})
    await delete_objects(pool, store)
    return erased


async def run_sweeps(pool: asyncpg.Pool, store: ObjectStore, catalogue: Catalogue, every: float) -> None:
    """The retention sweep, every `every` seconds, for as long as intake runs."""
    while True:
        try:
            erased = SWEEP_BATCH
            while erased >= SWEEP_BATCH:  # a full batch: a backlog (a city's first sweep), go on at once
                erased = await sweep(pool, store, catalogue)
        except Exception as exc:
            raise_if_cancelling()
            level = logging.WARNING if is_transient(exc) else logging.ERROR
            log.log(level, "the retention sweep failed (%s); it tries again later", exc, exc_info=exc)
        await asyncio.sleep(every)
