"""A citizen answers a request (documents, information) with their tracking code, no account needed.

The tracking code is checked the way tracking checks it, and mistyped or unknown codes count against a
per-client limit (`shared.ratelimit`, taken before the code is looked up), so codes cannot be guessed
here either. The message and the documents stay in intake; the bus only hears that an answer arrived
(`CitizenReplied`).
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, cast

import asyncpg
from fastapi import APIRouter, Depends, Request, Response

from services.intake import documents, domain, queries
from services.intake.deps import IdempotencyKey, Pool
from services.intake.documents import NO_FILES, DocumentStore, Received, UploadsDep
from services.intake.schemas import ReplyCreate, ReplyPublic
from shared import idempotency, tracking_code
from shared.eventstore import VersionConflict
from shared.http import ApiError, Lang
from shared.idempotency import Answer, Idempotent
from shared.ratelimit import Limiter, client_of
from shared.telemetry import current_traceparent, meter

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1")
replies_received = meter.create_counter(
    "suivi.replies.received", unit="{reply}", description="Citizens' replies recorded"
)


def make_limiter(miss_limit: str) -> Limiter:
    return Limiter(misses=miss_limit)


def limiter_of(request: Request) -> Limiter:
    """The per-client limiter of requests carrying a tracking code (replies and ratings)."""
    return cast(Limiter, request.app.state.reply_limiter)


async def case_of_code(pool: asyncpg.Pool, code: str, *, limiter: Limiter, client: str) -> asyncpg.Record:
    """The case a tracking code names; a miss counts against the client, and is answered as tracking does."""
    attempt = limiter.attempt(client)  # 429 here, before the code is even read
    try:
        digest = tracking_code.digest(code)
    except tracking_code.MistypedCode as exc:
        raise ApiError("error.code_mistyped", status=422) from exc
    except tracking_code.MalformedCode as exc:
        raise ApiError("error.code_malformed", status=422, code=code[:40]) from exc
    try:
        case = await queries.find_case_by_digest(pool, digest)
    except BaseException:
        attempt.found()  # an outage is no guess
        raise
    if case is None:
        raise ApiError("error.code_unknown", status=404)
    attempt.found()
    if case["erased"]:  # nothing personal may come back to an erased case
        raise ApiError("error.case_erased", status=410)
    return case


def _idempotent(
    key: str | None, *, case_id: uuid.UUID, body: ReplyCreate, files: Received
) -> Idempotent | None:
    if key is None:
        return None
    # The code as typed (case, dashes) must not make a retry look different: the scope names the case.
    fields = body.model_dump(mode="json", exclude={"tracking_code"})
    if files.checked:
        fields["files"] = documents.request_hash_part(files.checked)
    return Idempotent(
        schema=queries.SCHEMA, scope=f"reply:{case_id}", key=key, request_hash=idempotency.fingerprint(fields)
    )


_FILES = "files sent with the answer (PDF, JPEG or PNG, read from the content), one part per file"


@router.post(
    "/replies",
    status_code=202,
    response_model=ReplyPublic,
    openapi_extra=documents.upload_openapi("reply", "ReplyCreate", _FILES),
)
async def reply(
    body: ReplyCreate,
    uploads: UploadsDep,
    store: DocumentStore,
    request: Request,
    response: Response,
    pool: Pool,
    limiter: Annotated[Limiter, Depends(limiter_of)],
    lang: Lang,
    key: IdempotencyKey,
) -> ReplyPublic:
    """Answer the city hall's request: a message, links to documents, and files: as JSON, or as
    `multipart/form-data` with the JSON in a part named `reply` and each file in a part named
    `documents`. A retry with the same `Idempotency-Key` records the reply once and gets the first answer
    again (same status and body, with `Idempotent-Replayed: true`)."""
    case = await case_of_code(pool, body.tracking_code, limiter=limiter, client=client_of(request))
    clean, errors = domain.check_reply(body, lang)
    files = await documents.receive_reply(uploads, lang) if uploads else NO_FILES
    if errors or files.errors:
        raise ApiError("error.invalid_request", status=422, errors=errors + files.errors)
    received = domain.receive_reply(
        case_id=case["case_id"],
        procedure=case["procedure"],
        reply=clean,
        uploaded=[d.document_id for d in files.checked],
    )
    public = ReplyPublic(reply_id=received.reply_id, received_at=received.received_at)
    traceparent = current_traceparent()
    async with documents.kept(store, files.checked) as kept:
        try:
            answer, replayed = await queries.record_reply(
                pool,
                reply=received,
                events=lambda version: domain.reply_events(
                    received, version=version, traceparent=traceparent
                ),
                idempotent=_idempotent(key, case_id=case["case_id"], body=clean, files=files),
                answer=Answer(status=202, body=public.model_dump(mode="json")),
                documents=files.checked,
            )
        except VersionConflict as exc:
            raise ApiError("error.reply_conflict", status=409, headers={"Retry-After": "1"}) from exc
        if replayed:
            await kept.discard()  # the first request's files are the reply's
    response.status_code = answer.status
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
        return ReplyPublic.model_validate(answer.body)
    replies_received.add(1, {"procedure": received.procedure})
    log.info(
        "citizen replied",
        extra={"case_id": str(received.case_id), "reply_id": str(received.reply_id)},
    )
    return public
