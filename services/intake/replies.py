"""A citizen answers a request (documents, information) with their tracking code, no account needed.

The tracking code is checked the way tracking checks it, and mistyped or unknown codes count against a
per-client limit, so codes cannot be guessed here either. The message and the documents stay in intake;
the bus only hears that an answer arrived (`CitizenReplied`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from typing import Annotated, cast

import asyncpg
from fastapi import APIRouter, Depends, Request, Response
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from services.intake import domain, queries
from services.intake.deps import IdempotencyKey, Pool
from services.intake.schemas import ReplyCreate, ReplyPublic
from shared import tracking_code
from shared.eventstore import VersionConflict
from shared.http import ApiError, Lang
from shared.telemetry import current_traceparent, meter

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1")
replies_received = meter.create_counter(
    "suivi.replies.received", unit="{reply}", description="Citizens' replies recorded"
)


class MissLimiter:
    """Per-client limit on replies whose code misses, in this replica's memory."""

    def __init__(self, limit: str) -> None:
        self._window = MovingWindowRateLimiter(MemoryStorage())
        self._misses: RateLimitItem = parse(limit)

    def check(self, client: str) -> None:
        if not self._window.test(self._misses, client):
            reset = self._window.get_window_stats(self._misses, client).reset_time
            seconds = max(1, int(reset - time.time()) + 1)
            raise ApiError(
                "error.rate_limited", status=429, seconds=seconds, headers={"Retry-After": str(seconds)}
            )

    def miss(self, client: str) -> None:
        self._window.hit(self._misses, client)


def _limiter(request: Request) -> MissLimiter:
    return cast(MissLimiter, request.app.state.reply_limiter)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _case_of(pool: asyncpg.Pool, code: str, *, limiter: MissLimiter, client: str) -> asyncpg.Record:
    """The case a tracking code names; a miss counts against the client, and is answered as tracking does."""
    limiter.check(client)
    try:
        digest = tracking_code.digest(code)
    except tracking_code.MistypedCode as exc:
        limiter.miss(client)
        raise ApiError("error.code_mistyped", status=422) from exc
    except tracking_code.MalformedCode as exc:
        limiter.miss(client)
        raise ApiError("error.code_malformed", status=422, code=code[:40]) from exc
    case = await queries.find_case_by_digest(pool, digest)
    if case is None:
        limiter.miss(client)
        raise ApiError("error.code_unknown", status=404)
    return case


async def _replay(
    pool: asyncpg.Pool, *, case_id: uuid.UUID, key: str, request_hash: str
) -> ReplyPublic | None:
    previous = await queries.find_reply_by_idempotency_key(pool, case_id=case_id, key=key)
    if previous is None:
        return None
    if previous["request_hash"] != request_hash:
        raise ApiError("error.idempotency_key_reused", status=422)
    return ReplyPublic(reply_id=previous["reply_id"], received_at=previous["received_at"])


def _hash(body: ReplyCreate) -> str:
    # Keyed per case already; the code as typed (case, dashes) must not make a retry look different.
    fields = body.model_dump(mode="json", exclude={"tracking_code"})
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


@router.post("/replies", status_code=202, response_model=ReplyPublic)
async def reply(
    body: ReplyCreate,
    request: Request,
    response: Response,
    pool: Pool,
    limiter: Annotated[MissLimiter, Depends(_limiter)],
    lang: Lang,
    key: IdempotencyKey,
) -> ReplyPublic:
    """Answer the city hall's request: a message and links to documents. A retry with the same
    `Idempotency-Key` records the reply once and answers 200 with it."""
    case = await _case_of(pool, body.tracking_code, limiter=limiter, client=_client(request))
    clean, errors = domain.check_reply(body, lang)
    if errors:
        raise ApiError("error.invalid_request", status=422, errors=errors)
    request_hash = _hash(clean)
    if key and (previous := await _replay(pool, case_id=case["case_id"], key=key, request_hash=request_hash)):
        response.status_code, response.headers["Idempotent-Replayed"] = 200, "true"
        return previous
    received = domain.receive_reply(case_id=case["case_id"], procedure=case["procedure"], reply=clean)
    traceparent = current_traceparent()
    try:
        await queries.record_reply(
            pool,
            reply=received,
            events=lambda version: domain.reply_events(received, version=version, traceparent=traceparent),
            idempotency_key=key,
            request_hash=request_hash,
        )
    except queries.DuplicateKey:
        assert key is not None
        previous = await _replay(pool, case_id=case["case_id"], key=key, request_hash=request_hash)
        assert previous is not None
        response.status_code, response.headers["Idempotent-Replayed"] = 200, "true"
        return previous
    except VersionConflict as exc:
        raise ApiError("error.reply_conflict", status=409, headers={"Retry-After": "1"}) from exc
    replies_received.add(1, {"procedure": received.procedure})
    log.info(
        "citizen replied",
        extra={"case_id": str(received.case_id), "reply_id": str(received.reply_id)},
    )
    return ReplyPublic(reply_id=received.reply_id, received_at=received.received_at)
