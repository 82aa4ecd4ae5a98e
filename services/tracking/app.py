"""tracking: the public lookup by tracking code (JSON and an accessible web page, fr/en).

It folds case events into its own read model (`consumers.py`, `projection.py`). Once a case is decided,
its page asks the citizen to rate the service and sends the form on to intake (`web.py`).
Run alone: `uvicorn services.tracking.app:create_app --factory --port 8003`.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from services.tracking.api import router
from services.tracking.consumers import make_consumer
from services.tracking.figures import FiguresCache
from services.tracking.lookup import make_limiter
from services.tracking.settings import TrackingSettings
from services.tracking.web import router as web_router
from services.tracking.web import static_files
from shared.app import build_app
from shared.runtime import Runtime


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
        routers=[router, web_router],
        answers={"GET /v1/track/{code}": (429,)},  # too many lookups or misses
        on_start=_start,
    )
    app.state.limiter = make_limiter(settings)
    app.mount("/static", static_files(), name="static")
    return app
