"""tracking's Open311 GeoReport v2 door: the street reports anyone may read (`GET requests`), and the way
in for new ones (`POST requests`, forwarded to intake, which records them).

One path, `requests.json`, takes both methods, and an ingress routes by path only: tracking owns the path
and hands a posted form to intake unchanged (`INTAKE_URL`), relaying its answer. The services
(`services.json`, `services/{code}.json`) are intake's. What a request shows: `open311_view.py`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import Path, Request, Response

from services.tracking.figures import FiguresCache
from services.tracking.open311_filters import Asked, Jurisdiction, base_filters, filters_of
from services.tracking.open311_forward import router as forward_router
from services.tracking.open311_queries import Filters, find_requests
from services.tracking.open311_view import RequestOpen311, request_of
from shared.http import Lang
from shared.open311_http import (
    answer,
    format_of,
    in_both_formats,
    open311_router,
    refuse,
    with_fallback,
)
from shared.procedures import CITY_TIMEZONE

router = open311_router(tags=["open311"])


async def _answer(request: Request, filters: Filters, lang: str) -> list[dict[str, Any]]:
    state = request.app.state
    pool: asyncpg.Pool = state.runtime.pool
    cases = await find_requests(pool, filters)
    figures: FiguresCache = state.figures
    forecasts = {p: await figures.forecast(p) for p in {c["procedure"] for c in cases}}
    today = datetime.now(CITY_TIMEZONE).date()
    return [
        request_of(
            c,
            catalogue=state.catalogue,
            services=state.open311_services,
            lang=lang,
            figures=forecasts[c["procedure"]],
            today=today,
        )
        for c in cases
    ]


_NO_SERVICE: dict[int | str, dict[str, Any]] = {404: {"description": "A `service_code` that no service has."}}
_LIST_DOC = (
    "Street reports, newest first, at most 1000: by default those of the 90 days up to `end_date` (now). "
    "`service_request_id` (comma-separated) overrides every other filter; `start_date`/`end_date` are ISO "
    "8601 with a time zone; `service_code` and `status` (open, closed) take comma-separated values. No "
    "personal data: the place is the centre of a cell of about 130 m, and no description, photo or address."
)


@in_both_formats(
    router.get, "/requests", response_model=list[RequestOpen311], responses=_NO_SERVICE, description=_LIST_DOC
)
async def list_requests(request: Request, lang: Lang, asked: Asked) -> Response:
    requests = await _answer(request, filters_of(request, asked, lang), lang)
    return answer(format_of(request), requests, root="service_requests")


RequestId = Annotated[str, Path(max_length=100, description="a `service_request_id`")]


@in_both_formats(
    router.get,
    "/requests/{service_request_id}",
    response_model=list[RequestOpen311],
    responses={404: {"description": "No such request."}},
    description="One street report, as a list of one (the spec's shape).",
)
async def get_request(
    request: Request, lang: Lang, service_request_id: RequestId, jurisdiction_id: Jurisdiction = None
) -> Response:
    try:
        case_id = uuid.UUID(service_request_id)
    except ValueError:
        case_id = None
    filters = base_filters(request.app.state.catalogue)
    filters.ids = [case_id] if case_id else []
    found = await _answer(request, filters, lang) if case_id else []
    if not found:
        raise refuse(404, "open311.unknown_request", lang, id=service_request_id[:100])
    return answer(format_of(request), found, root="service_requests")


# For `build_app`, last of its routers; then `install_open311(app)`.
ROUTERS = with_fallback(router, forward_router)
