"""After the decision, the citizen rates the service once (1 to 5, and a comment if they wish), with their
tracking code, no account needed. The rating goes on the bus (`CaseRated`, for stats); the comment is free
text and stays here (agents read it in workflow's case view, through the internal API).

intake learns that a case was decided by folding workflow's `StepChanged` events (`consumers.py`).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from services.intake import queries
from services.intake.deps import Pool
from services.intake.replies import case_of_code, limiter_of
from shared.events.intake import CaseRated
from shared.http import ApiError, StoredStr
from shared.ratelimit import Limiter, client_of
from shared.telemetry import meter

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1")
ratings_received = meter.create_counter(
    "suivi.ratings.received", unit="{rating}", description="Citizens' ratings"
)
MAX_COMMENT_LENGTH = 2000


class RatingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # In the body, not the URL: URLs end up in proxies' logs, and the code is a bearer secret.
    tracking_code: str = Field(max_length=64, description="the tracking code, dashes optional, any case")
    rating: int = Field(ge=1, le=5, description="1 (very unhappy) to 5 (very happy)")
    comment: StoredStr | None = Field(default=None, max_length=MAX_COMMENT_LENGTH)


class RatingPublic(BaseModel):
    case_id: uuid.UUID
    rating: int
    rated_at: datetime


async def _record(conn: asyncpg.Connection, case: asyncpg.Record, body: RatingCreate, at: datetime) -> None:
    await queries.lock_case(conn, case["case_id"])
    if not await conn.fetchval("SELECT true FROM intake.decisions WHERE case_id = $1", case["case_id"]):
        raise ApiError("error.rating_before_decision", status=409)
    comment = (body.comment or "").strip() or None
    inserted = await conn.fetchval(
        "INSERT INTO intake.ratings(case_id, rating, comment, rated_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (case_id) DO NOTHING RETURNING true",
        case["case_id"],
        body.rating,
        comment,
        at,
    )
    if not inserted:
        raise ApiError("error.already_rated", status=409)
    event = CaseRated(
        case_id=case["case_id"], rating=body.rating, rated_at=at, with_comment=comment is not None
    )
    await queries.append_event(conn, procedure=case["procedure"], event=event)


@router.post("/ratings", status_code=201, response_model=RatingPublic)
async def rate(
    body: RatingCreate,
    request: Request,
    pool: Pool,
    limiter: Annotated[Limiter, Depends(limiter_of)],
) -> RatingPublic:
    """Rate the service once the case is decided: 1 to 5, and a comment if you wish (it stays with the
    city hall). A second rating for the same case answers 409."""
    case = await case_of_code(pool, body.tracking_code, limiter=limiter, client=client_of(request))
    at = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        await _record(conn, case, body, at)
    ratings_received.add(1, {"procedure": case["procedure"]})
    log.info("citizen rated the service %d/5", body.rating, extra={"case_id": str(case["case_id"])})
    return RatingPublic(case_id=case["case_id"], rating=body.rating, rated_at=at)
