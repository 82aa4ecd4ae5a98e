"""intake's internal API, for other Suivi services only (not routed by the public ingress).

workflow asks here for what the citizen gave (contact details, the form, their replies, their files)
when an agent opens a case or downloads a file, and notify for where to write (the address, the channels
chosen, the tracking code for the links) at each send, instead of any of it ever travelling on the bus.
The caller logs each read.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

import asyncpg
from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from services.intake import queries
from services.intake.deps import Pool
from services.intake.documents import DOCUMENT_ID, DocumentStore
from shared.deps import InternalCaller
from shared.http import ApiError
from shared.objectstore import ObjectNotFound

log = logging.getLogger(__name__)
router = APIRouter(prefix="/internal/v1", include_in_schema=False, dependencies=[InternalCaller])


class ApplicantInternal(BaseModel):
    name: str
    email: str | None
    phone: str | None
    language: str


class ReplyInternal(BaseModel):
    reply_id: uuid.UUID
    message: str
    documents: list[str]
    received_at: datetime


class RatingInternal(BaseModel):
    rating: int
    comment: str | None
    rated_at: datetime


class DocumentInternal(BaseModel):
    """A file the citizen sent: what its row says (the bytes: `GET /internal/v1/documents/{id}`)."""

    document_id: str
    field: str
    reply_id: uuid.UUID | None
    filename: str
    content_type: str
    size: int
    created_at: datetime


class CaseFileInternal(BaseModel):
    """Everything the citizen gave for a case: the form as submitted, the applicant, the replies, the
    files, the rating."""

    case_id: uuid.UUID
    procedure: str
    procedure_version: int
    submitted_at: datetime
    data: dict[str, Any]
    applicant: ApplicantInternal | None
    replies: list[ReplyInternal]
    rating: RatingInternal | None = None
    documents: list[DocumentInternal] = []
    erased_at: datetime | None = Field(
        default=None,
        description="when the case's personal data was erased (on request or at the end of its retention "
        "period): `data` then holds only its public facts, and there is no applicant, text or file",
    )


def _not_found(case_id: uuid.UUID) -> ApiError:
    return ApiError("intake.case_not_found", status=404, case_id=case_id)


async def _case_file(conn: asyncpg.Connection, case_id: uuid.UUID) -> dict[str, Any] | None:
    case = await conn.fetchrow(
        "SELECT c.case_id, c.procedure, c.procedure_version, c.submitted_at, c.data, "
        "a.case_id IS NOT NULL AS has_applicant, a.name, a.email, a.phone, a.language, e.erased_at "
        "FROM intake.cases c LEFT JOIN intake.applicants a USING (case_id) "
        "LEFT JOIN intake.erasures e USING (case_id) WHERE c.case_id = $1",
        case_id,
    )
    if case is None:
        return None
    replies = await conn.fetch(
        "SELECT reply_id, message, documents, received_at FROM intake.replies "
        "WHERE case_id = $1 ORDER BY received_at, reply_id",
        case_id,
    )
    rating = await conn.fetchrow(
        "SELECT rating, comment, rated_at FROM intake.ratings WHERE case_id = $1", case_id
    )
    documents = await conn.fetch(
        "SELECT document_id, field, reply_id, filename, content_type, size, created_at "
        "FROM intake.documents WHERE case_id = $1 ORDER BY created_at, position",
        case_id,
    )
    applicant = {k: case[k] for k in ("name", "email", "phone", "language")}
    return {
        "rating": dict(rating) if rating else None,
        **{
            k: case[k]
            for k in ("case_id", "procedure", "procedure_version", "submitted_at", "data", "erased_at")
        },
        "applicant": applicant if case["has_applicant"] else None,
        "replies": [dict(r) for r in replies],
        "documents": [dict(d) for d in documents],
    }


class ContactInternal(BaseModel):
    """Where and how to tell the citizen of a change: all notify needs, nothing more."""

    case_id: uuid.UUID
    tracking_code: str
    language: str
    notify_by: list[str]
    email: str | None
    phone: str | None


@router.get("/cases/{case_id}/contact", response_model=ContactInternal)
async def get_contact(
    case_id: uuid.UUID,
    pool: Pool,
) -> dict[str, Any]:
    """Read by notify at each send, so no address is kept anywhere else."""
    row = await pool.fetchrow(
        "SELECT c.case_id, c.tracking_code, a.language, a.notify_by, a.email, a.phone "
        "FROM intake.cases c JOIN intake.applicants a USING (case_id) WHERE c.case_id = $1",
        case_id,
    )
    if row is None:
        raise _not_found(case_id)
    return dict(row)


@router.get("/cases/{case_id}", response_model=CaseFileInternal)
async def get_case_file(
    case_id: uuid.UUID,
    pool: Pool,
) -> dict[str, Any]:
    """The case as the citizen gave it: read at each request, so workflow never keeps a copy."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        found = await _case_file(conn, case_id)
    if found is None:
        raise _not_found(case_id)
    return found


@router.get("/documents/{document_id}")
async def get_document(
    document_id: Annotated[str, Path(pattern=DOCUMENT_ID)],
    case_id: Annotated[uuid.UUID, Query(description="the case the caller may read")],
    pool: Pool,
    store: DocumentStore,
) -> Response:
    """A file's bytes, if it is one of `case_id`'s: workflow checked that its agent may read that case."""
    row = await queries.get_document(pool, document_id=document_id, case_id=case_id)
    if row is None:
        raise ApiError("intake.document_not_found", status=404, document_id=document_id, case_id=case_id)
    try:
        content = await store.get(row["stored_key"])
    except ObjectNotFound:
        content = None
    if content is None or hashlib.sha256(content).hexdigest() != row["sha256"]:
        # Not the caller's fault, and not something a retry changes: a person must look at the store.
        log.error(
            "document %s is missing or altered in the store", document_id, extra={"case_id": str(case_id)}
        )
        raise ApiError("intake.document_missing", status=500, document_id=document_id)
    filename = row["filename"]
    return Response(
        content,
        media_type=row["content_type"],
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
            "Suivi-Document-Filename": quote(filename),
            "Suivi-Document-Sha256": row["sha256"],
        },
    )
