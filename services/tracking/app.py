"""tracking: the public lookup by tracking code (JSON and an accessible web page, fr/en).

It folds case events into its own read model (`consumers.py`, `projection.py`). Once a case is decided,
its page asks the citizen to rate the service and sends the form on to intake (`web.py`); while the city
hall waits for the citizen, the page's reply form (a message and files) goes on to intake (`reply.py`).
Run alone: `uvicorn services.tracking.app:create_app --factory --port 8003`.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from services.tracking import open311, reply
from services.tracking.api import router
from services.tracking.consumers import make_consumer
from services.tracking.figures import FiguresCache
from services.tracking.lookup import make_limiter
from services.tracking.reports import router as reports_router
from services.tracking.settings import TrackingSettings
from services.tracking.web import router as web_router
from shared.app import build_app
from shared.http import OwnLimit, RouteBodyLimits
from shared.open311_http import install_open311
from shared.pages import mount_static
from shared.runtime import Runtime

USUAL_BODY_BYTES = 64 * 1024  # `build_app`'s own default: no request but the reply form needs more


async def _start(app: FastAPI, runtime: Runtime) -> None:
    app.state.figures = FiguresCache(runtime.nc)
    # The rating form goes on to intake (`web.py`).
    app.state.http = httpx.AsyncClient()
    runtime.closers.append(app.state.http.aclose)
    runtime.start(make_consumer(runtime).run(), name="tracking-consumer")


def create_app(settings: TrackingSettings | None = None) -> FastAPI:
    settings = settings or TrackingSettings()
    app = build_app(
        service="tracking",
        title="Suivi tracking",
        settings=settings,
        migrations=Path(__file__).parent / "migrations",
        shared_sql=("projection",),
        # Open311 last: its fallback takes the rest.
        routers=[router, web_router, reports_router, *open311.ROUTERS],
        answers={"GET /v1/track/{code}": (429,)},  # too many lookups or misses
        on_start=_start,
        max_body_bytes=max(USUAL_BODY_BYTES, settings.reply_max_body_bytes),
    )
    # Outermost: the usual limit for every request; the reply form's, with its files, its own.
    reply_limit = OwnLimit(settings.reply_max_body_bytes, ("multipart/form-data",))
    app.add_middleware(RouteBodyLimits, limit=USUAL_BODY_BYTES, routes={reply.PATH: reply_limit})
    app.state.limiter = make_limiter(settings)
    install_open311(app)
    mount_static(app)
    return app
