"""Looking a case up by its tracking code: shared by the JSON API and the web page.

Lookups and misses (mistyped, malformed and unknown codes) count against per-client budgets
(`shared.ratelimit`), so codes cannot be guessed at speed: a lookup takes its miss before anything else,
even before waiting for a case submitted a moment ago, and gives it back when the code is found. An
unknown code is answered the same way whether or not it ever existed. The code itself is never logged.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import asyncpg
from fastapi import Request

from services.tracking import duplicates, queries
from services.tracking.domain import build_view
from services.tracking.figures import FiguresCache
from services.tracking.schemas import TrackingView
from services.tracking.settings import TrackingSettings
from shared import tracking_code
from shared.http import ApiError
from shared.procedures import CITY_TIMEZONE, Catalogue
from shared.ratelimit import Limiter, client_of
from shared.telemetry import meter

lookups = meter.create_counter("suivi.tracking.lookups", unit="{lookup}", description="Tracking-code lookups")

Found = tuple[dict[str, Any], list[dict[str, Any]]]


def make_limiter(settings: TrackingSettings) -> Limiter:
    return Limiter(misses=settings.miss_limit, requests=settings.lookup_limit)


def _normalized(code: str) -> str:
    try:
        return tracking_code.normalize(code)
    except tracking_code.MistypedCode as exc:
        lookups.add(1, {"outcome": "mistyped"})
        raise ApiError("error.code_mistyped", status=422) from exc
    except tracking_code.MalformedCode as exc:
        lookups.add(1, {"outcome": "malformed"})
        raise ApiError("error.code_malformed", status=422, code=code[:40]) from exc


async def _find(request: Request, digest: str, *, min_version: int) -> Found | None:
    settings: TrackingSettings = request.app.state.settings
    pool: asyncpg.Pool = request.app.state.runtime.pool
    patience = settings.read_your_writes_seconds if min_version > 1 else settings.unknown_code_grace_seconds
    search = asyncio.ensure_future(
        queries.wait_for_case(pool, digest, min_version=min_version, patience=patience)
    )
    try:
        done, _ = await asyncio.wait({search}, timeout=patience + settings.database_timeout_seconds)
    except asyncio.CancelledError:
        search.cancel()
        raise
    if search not in done:
        # A database that stops answering is a 503 now. The search is left to end on its own: cancelling
        # it would wait for the silent server to acknowledge, and the pool's command timeout bounds it.
        search.add_done_callback(_forget)
        raise TimeoutError("the read model did not answer in time")
    return search.result()


def _forget(search: asyncio.Future[Found | None]) -> None:
    if not search.cancelled():
        search.exception()  # retrieved: the outage was answered already (503)


async def lookup(*, request: Request, code: str, lang: str, min_version: int = 1) -> TrackingView:
    state = request.app.state
    limiter: Limiter = state.limiter
    attempt = limiter.attempt(client_of(request))  # 429 here, before any wait
    normalized = _normalized(code)
    try:
        found = await _find(request, tracking_code.digest_of_normalized(normalized), min_version=min_version)
    except BaseException:
        attempt.found()  # an outage or a cancelled request is no guess
        raise
    if found is None:
        lookups.add(1, {"outcome": "unknown"})
        raise ApiError("error.code_unknown", status=404)
    attempt.found()
    lookups.add(1, {"outcome": "found"})
    catalogue: Catalogue = state.catalogue
    figures: FiguresCache = state.figures
    view = build_view(
        code=tracking_code.display(normalized),
        case=found[0],
        history=found[1],
        catalogue=catalogue,
        lang=lang,
        today=datetime.now(CITY_TIMEZONE).date(),
        figures=await figures.forecast(found[0]["procedure"]),
    )
    view.followed_in = await duplicates.followed_in(
        state.runtime.pool, found[0], catalogue=catalogue, lang=lang
    )
    return view
