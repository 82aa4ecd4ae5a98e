"""`POST /v1/imports`: the historical import over HTTP, for a city's admin (an agent token with the role
`admin`). The body is JSON Lines, one past case per line, exactly as the command takes them
(`python -m services.intake.imports FILE`, see `imports.py`, which both call): each good line is recorded
once (`reference` is the idempotency key), each bad one is answered with its number and what is wrong.

The body may be larger than other requests' (`INTAKE_IMPORT_MAX_BODY_BYTES`, 4 MiB by default: some ten
thousand cases); past it, the 413 says to use the command, which has no limit.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.types import Receive, Scope, Send

from services.intake import imports
from services.intake.deps import CatalogueDep, CurrentAdmin, Pool
from shared.http import ApiError, BodySizeLimit, language_of, problem

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1")
PATH = "/v1/imports"
# What the body may be sent as: JSON Lines under its usual names, or plain text (a file, one object a line).
JSON_LINES = (
    "application/jsonl",
    "application/x-ndjson",
    "application/jsonlines",
    "application/x-jsonlines",
    "text/plain",
)
# Bad lines listed in the answer; the others are counted (a file of garbage must not make a huge answer).
LISTED_AT_MOST = 1000


class RejectedLine(BaseModel):
    line: int = Field(description="the line's number in the body, from 1")
    reference: str | None = Field(description="the line's `reference`, when it has a readable one")
    error: str = Field(description="what is wrong with the line")


class ImportSummary(BaseModel):
    imported: int = Field(description="cases recorded now")
    skipped: int = Field(description="lines whose reference was imported before: nothing changed for them")
    rejected: int = Field(description="bad lines, not imported (the good lines were)")
    errors: list[RejectedLine] = Field(description=f"the first {LISTED_AT_MOST} bad lines and what is wrong")


_BODY = {
    "required": True,
    "description": "JSON Lines (UTF-8): one past case per line, as `python -m services.intake.imports` takes "
    'them, e.g. `{"reference": "PC-2024-0193", "procedure": "permis-construire", "channel": "counter", '
    '"facts": {"district": "centre"}, "timeline": [{"at": "2024-03-04T09:12:00+01:00", "event": '
    '"submitted"}, {"at": "2024-05-13T16:45:00+02:00", "event": "decided", "outcome": "accepted"}]}`. '
    "Also taken as application/x-ndjson or application/x-jsonlines.",
    "content": {
        media_type: {"schema": {"type": "string"}} for media_type in ("application/jsonl", "text/plain")
    },
}
_ANSWERS: dict[int | str, dict[str, str]] = {
    400: {"description": "No line of the body is a JSON object: it is not JSON Lines. Nothing was imported."},
    403: {"description": "The token is an agent's, not an admin's."},
    413: {"description": "The body is over INTAKE_IMPORT_MAX_BODY_BYTES: import the file with the command."},
    415: {
        "description": "The body is not sent as JSON Lines (`Content-Type: application/jsonl` or `text/plain`)."
    },
    422: {"description": "The body holds no line at all."},
    503: {"description": "PostgreSQL is briefly unavailable, or intake has no identity provider configured."},
}


@router.post(
    "/imports", response_model=ImportSummary, openapi_extra={"requestBody": _BODY}, responses=_ANSWERS
)
async def import_cases(
    request: Request, pool: Pool, catalogue: CatalogueDep, admin: CurrentAdmin
) -> ImportSummary:
    """Import past cases (JSON Lines, one per line), for an admin: each good line becomes a
    `CaseImported` event, once (the same file twice changes nothing); the bad lines are answered with
    their number and what is wrong, and the good ones are imported all the same."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in JSON_LINES:
        raise ApiError("intake.import_not_json_lines_type", status=415, got=media_type or "none")
    body = await request.body()
    summary = await imports.import_lines(
        pool,
        enumerate(body.split(b"\n"), start=1),
        catalogue,
        summary=imports.Summary(list_at_most=LISTED_AT_MOST),
    )
    _refuse_if_no_json_lines(summary)
    log.info(
        "%d past cases imported, %d skipped (imported before), %d lines rejected",
        summary.imported,
        summary.skipped,
        summary.rejected_count,
        extra={"agent": admin.id},
    )
    return ImportSummary(
        imported=summary.imported,
        skipped=summary.skipped,
        rejected=summary.rejected_count,
        errors=[RejectedLine(**bad) for bad in summary.rejected],
    )


def _refuse_if_no_json_lines(summary: imports.Summary) -> None:
    """Nothing was recorded in either case: the body was not what this route takes."""
    if not summary.objects and summary.rejected:
        first = summary.rejected[:5]
        errors = [{"field": f"line {bad['line']}", "message": bad["error"]} for bad in first]
        raise ApiError(
            "intake.import_not_json_lines", status=400, errors=errors, lines=summary.rejected_count
        )
    if not summary.rejected_count and not summary.imported and not summary.skipped:
        raise ApiError("intake.import_empty", status=422)


class ImportBodyLimit(BodySizeLimit):
    """The import's own body limit, whose 413 points at the command."""

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: int) -> None:
        lang = language_of(Request(scope))
        answer = problem(413, "intake.import_too_large", lang, size=size, limit=self.limit)
        await answer(scope, receive, send)
