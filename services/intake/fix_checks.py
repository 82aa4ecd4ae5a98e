"""After a street report's "done" ("service fait"), its reporter says whether the problem is really fixed,
with their tracking code (tracking's page asks four weeks later, when notify writes; they may answer as
soon as the report is done). The answer goes on the bus (`FixChecked`): stats publishes the share
confirmed fixed, and "not fixed" makes workflow reopen the report. A comment stays here.

Once per "done": a report reopened and done again is asked again. intake knows where a case stands by
folding workflow's `StepChanged` events (`consumers.py`, table `steps`).
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
from services.intake.deps import CatalogueDep, Pool
from services.intake.replies import case_of_code, limiter_of
from shared.events.intake import FixChecked
from shared.http import ApiError, StoredStr
from shared.procedures import Catalogue
from shared.ratelimit import Limiter, client_of
from shared.telemetry import meter

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1")
fix_checks_received = meter.create_counter(
    "suivi.fix_checks.received", unit="{answer}", description='Reporters\' answers to "is it fixed?"'
)
MAX_COMMENT_LENGTH = 2000


class FixCheckCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # In the body, not the URL: URLs end up in proxies' logs, and the code is a bearer secret.
    tracking_code: str = Field(max_length=64, description="the tracking code, dashes optional, any case")
    fixed: bool = Field(
        description="true: the problem is really fixed; false: it is not (the report reopens)"
    )
    comment: StoredStr | None = Field(default=None, max_length=MAX_COMMENT_LENGTH)


class FixCheckPublic(BaseModel):
    case_id: uuid.UUID
    fixed: bool
    checked_at: datetime
    reopens: bool = Field(description='whether the report is reopened (the answer was "not fixed")')


async def _record(
    conn: asyncpg.Connection, case: asyncpg.Record, body: FixCheckCreate, at: datetime, catalogue: Catalogue
) -> None:
    await queries.lock_case(conn, case["case_id"])
    where = await conn.fetchrow(
        "SELECT step, done_version FROM intake.steps WHERE case_id = $1", case["case_id"]
    )
    procedure = catalogue.get(case["procedure"], case["procedure_version"])
    step = procedure.steps_by_code.get(where["step"]) if procedure is not None and where else None
    if step is None or step.ask_if_fixed_after_days is None or where["done_version"] is None:
        raise ApiError("error.fix_check_not_done", status=409)
    comment = (body.comment or "").strip() or None
    inserted = await conn.fetchval(
        "INSERT INTO intake.fix_checks(case_id, done_version, fixed, comment, checked_at) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (case_id, done_version) DO NOTHING RETURNING true",
        case["case_id"],
        where["done_version"],
        body.fixed,
        comment,
        at,
    )
    if not inserted:
        raise ApiError("error.fix_check_already", status=409)
    event = FixChecked(
        case_id=case["case_id"], fixed=body.fixed, checked_at=at, done_version=where["done_version"]
    )
    await queries.append_event(conn, procedure=case["procedure"], event=event)


@router.post("/fix-checks", status_code=201, response_model=FixCheckPublic)
async def check_fix(
    body: FixCheckCreate,
    request: Request,
    pool: Pool,
    catalogue: CatalogueDep,
    limiter: Annotated[Limiter, Depends(limiter_of)],
) -> FixCheckPublic:
    """Say whether a street report the city marked "done" is really fixed. "Not fixed" reopens it: the
    service looks at it again. Once per "done" (a second answer is a 409); a report not done is a 409."""
    case = await case_of_code(pool, body.tracking_code, limiter=limiter, client=client_of(request))
    at = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        await _record(conn, case, body, at, catalogue)
    fix_checks_received.add(1, {"procedure": case["procedure"], "fixed": body.fixed})
    log.info(
        "reporter says the problem is %s",
        "fixed" if body.fixed else "not fixed",
        extra={"case_id": str(case["case_id"])},
    )
    return FixCheckPublic(case_id=case["case_id"], fixed=body.fixed, checked_at=at, reopens=not body.fixed)
