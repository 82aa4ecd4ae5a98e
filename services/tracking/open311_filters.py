"""What `GET /open311/v2/requests` asks for, read from its query as the spec says: `service_request_id`
(comma-separated, overriding every other filter), `service_code` and `status` (comma-separated),
`start_date`/`end_date` (ISO 8601 with a time zone; by default the 90 days up to now)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Query, Request

from services.tracking.open311_queries import Filters
from shared.open311 import Open311Service, Open311Services, located_versions
from shared.open311_http import refuse
from shared.procedures import Catalogue

# The spec's default and bound: the last 90 days, at most 1000 requests.
WINDOW = timedelta(days=90)
LIMIT = 1000
MAX_IDS = 200
# Each filter's characters and length: the URL, once percent-encoded, stays within what an HTTP server
# reads of a request's head (16 KiB for uvicorn's h11).
Ids = Annotated[
    str | None,
    Query(max_length=7400, pattern=r"^[0-9A-Fa-f, -]*$", description=f"at most {MAX_IDS}, comma-separated"),
]
Codes = Annotated[
    str | None, Query(max_length=2000, pattern=r"^[a-z0-9., -]*$", description="comma-separated")
]
Statuses = Annotated[
    str | None,
    Query(max_length=20, pattern=r"^( *(open|closed) *(, *(open|closed) *)*)?$", description="open, closed"),
]
_DATE = r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
_TIME = r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?"
When = Annotated[
    str | None,
    Query(
        max_length=40,
        pattern=rf"^({_DATE}T{_TIME}(Z|[+ -]([01]\d|2[0-3]):?[0-5]\d))?$",
        description="ISO 8601 with a time zone, e.g. 2025-06-01T08:30:00Z",
    ),
]
Jurisdiction = Annotated[
    str | None, Query(max_length=200, description="accepted and ignored: this endpoint serves one city")
]
# A `+` sent unencoded in a query string arrives as a space: `2025-06-01T10:30:00 02:00`.
_SPACED_OFFSET = re.compile(r" (\d\d:?\d\d)$")


def _at(text: str | None, name: str, lang: str) -> datetime | None:
    if text is None or not text.strip():
        return None
    try:
        at = datetime.fromisoformat(_SPACED_OFFSET.sub(r"+\1", text.strip()))
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise refuse(400, "open311.datetime", lang, name=name)
    return at


def _ids(text: str | None, lang: str) -> list[uuid.UUID] | None:
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) > MAX_IDS:
        raise refuse(400, "open311.too_many_ids", lang, max=MAX_IDS)
    ids = []
    for part in parts:
        try:
            ids.append(uuid.UUID(part))
        except ValueError:
            continue  # no request has it: like any unknown id, it is simply not in the answer
    return ids


def _services(request: Request, text: str | None, lang: str) -> list[Open311Service] | None:
    if text is None or not text.strip():
        return None
    services: Open311Services = request.app.state.open311_services
    found = []
    for code in (c.strip() for c in text.split(",") if c.strip()):
        if (service := services.get(code)) is None:
            raise refuse(404, "open311.unknown_service", lang, code=code[:100])
        found.append(service)
    return found


def _statuses(text: str | None, lang: str) -> set[str] | None:
    if text is None or not text.strip():
        return None
    statuses = {s.strip().lower() for s in text.split(",") if s.strip()}
    if not statuses <= {"open", "closed"}:
        raise refuse(400, "open311.status", lang)
    return statuses


def _window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """The spec's default window: the 90 days up to `end_date` (now by default). A wider window asked for
    is served too (the spec asks clients not to), newest first, at most `LIMIT` requests like any other."""
    end = end or datetime.now(UTC)
    return start or end - WINDOW, end


def base_filters(catalogue: Catalogue) -> Filters:
    located = located_versions(catalogue)
    return Filters(
        located=[(p.code, p.version) for p in located],
        finals=[f"{p.code}/{p.version}/{s.code}" for p in located for s in p.steps if s.outcome is not None],
        limit=LIMIT,
    )


async def _asked(
    service_request_id: Ids = None,
    service_code: Codes = None,
    start_date: When = None,
    end_date: When = None,
    status: Statuses = None,
    jurisdiction_id: Jurisdiction = None,
) -> dict[str, str | None]:
    return {
        "service_request_id": service_request_id,
        "service_code": service_code,
        "start_date": start_date,
        "end_date": end_date,
        "status": status,
    }


Asked = Annotated[dict[str, str | None], Depends(_asked)]


def filters_of(request: Request, asked: dict[str, str | None], lang: str) -> Filters:
    """The filters asked for, or an Open311 error saying which is wrong (400) or unknown (404)."""
    filters = base_filters(request.app.state.catalogue)
    filters.ids = _ids(asked["service_request_id"], lang)
    if filters.ids is None:  # the ids, when given, override every other filter (the spec)
        filters.services = _services(request, asked["service_code"], lang)
        filters.statuses = _statuses(asked["status"], lang)
        start, end = _at(asked["start_date"], "start_date", lang), _at(asked["end_date"], "end_date", lang)
        filters.start, filters.end = _window(start, end)
    return filters
