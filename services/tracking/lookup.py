"""Looking a case up by its tracking code: shared by the JSON API and the web page.

Mistyped and unknown codes count against a per-client limit, so codes cannot be guessed at speed; an
unknown code is answered the same way whether or not it ever existed.
"""

from __future__ import annotations

import time
from datetime import datetime

import asyncpg
from fastapi import Request
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter, RateLimiter

from services.tracking import queries
from services.tracking.domain import build_view
from services.tracking.figures import FiguresCache
from services.tracking.schemas import TrackingView
from services.tracking.settings import TrackingSettings
from shared import tracking_code
from shared.http import ApiError
from shared.procedures import CITY_TIMEZONE, Catalogue
from shared.telemetry import meter

lookups = meter.create_counter("suivi.tracking.lookups", unit="{lookup}", description="Tracking-code lookups")


class Limiter:
    """Per-client limits, in this replica's memory (a client hitting several replicas gets each one's)."""

    def __init__(self, settings: TrackingSettings) -> None:
        storage = MemoryStorage()
        # Misses are few and matter most: a moving window. Every lookup: a fixed window, cheap per request.
        self._strategies: dict[str, RateLimiter] = {
            "misses": MovingWindowRateLimiter(storage),
            "lookups": FixedWindowRateLimiter(storage),
        }
        self.misses: RateLimitItem = parse(settings.miss_limit)
        self.lookups: RateLimitItem = parse(settings.lookup_limit)

    def check(self, client: str) -> None:
        for name, item in (("misses", self.misses), ("lookups", self.lookups)):
            window = self._strategies[name]
            if not window.test(item, client):
                reset = window.get_window_stats(item, client).reset_time
                seconds = max(1, int(reset - time.time()) + 1)
                raise ApiError(
                    "error.rate_limited", status=429, seconds=seconds, headers={"Retry-After": str(seconds)}
                )
        self._strategies["lookups"].hit(self.lookups, client)

    def miss(self, client: str) -> None:
        self._strategies["misses"].hit(self.misses, client)


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def lookup(*, request: Request, code: str, lang: str, min_version: int = 1) -> TrackingView:
    state = request.app.state
    settings: TrackingSettings = state.settings
    limiter: Limiter = state.limiter
    pool: asyncpg.Pool = state.runtime.pool
    client = client_of(request)
    limiter.check(client)
    try:
        digest = tracking_code.digest(code)
    except tracking_code.MistypedCode as exc:
        limiter.miss(client)
        lookups.add(1, {"outcome": "mistyped"})
        raise ApiError("error.code_mistyped", status=422) from exc
    except tracking_code.MalformedCode as exc:
        limiter.miss(client)
        lookups.add(1, {"outcome": "malformed"})
        raise ApiError("error.code_malformed", status=422, code=code[:40]) from exc
    patience = settings.read_your_writes_seconds if min_version > 1 else settings.unknown_code_grace_seconds
    found = await queries.wait_for_case(pool, digest, min_version=min_version, patience=patience)
    if found is None:
        limiter.miss(client)
        lookups.add(1, {"outcome": "unknown"})
        raise ApiError("error.code_unknown", status=404)
    lookups.add(1, {"outcome": "found"})
    catalogue: Catalogue = state.catalogue
    figures: FiguresCache = state.figures
    return build_view(
        code=code,
        case=found[0],
        history=found[1],
        catalogue=catalogue,
        lang=lang,
        today=datetime.now(CITY_TIMEZONE).date(),
        figures=await figures.forecast(found[0]["procedure"]),
    )
