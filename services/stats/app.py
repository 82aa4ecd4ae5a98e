"""stats: how long procedures really take here, folded from the stream and published as JSON, open data
and a dashboard.

It folds case events into pre-aggregated figures (`consumers.py`, `projection.py`).
Run alone: `uvicorn services.stats.app:create_app --factory --port 8004`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.stats.api import router
from services.stats.consumers import make_consumer
from services.stats.forecast import keep_forecasts_published
from services.stats.opendata import router as open_data_router
from services.stats.reports_api import router as reports_router
from services.stats.reports_opendata import router as reports_open_data_router
from services.stats.reports_web import router as reports_web_router
from services.stats.settings import StatsSettings
from services.stats.web import STATIC, static_files
from services.stats.web import router as web_router
from shared.app import build_app
from shared.bus import figures_bucket
from shared.pages import mount_static
from shared.runtime import Runtime


async def _start(app: FastAPI, runtime: Runtime) -> None:
    settings: StatsSettings = app.state.settings
    consumer = make_consumer(runtime, catalogue=app.state.catalogue)
    runtime.start(consumer.run(), name="stats-consumer")
    kv = await figures_bucket(runtime.js, replicas=settings.stream_replicas)
    runtime.start(
        keep_forecasts_published(
            runtime.pool,
            kv,
            app.state.catalogue,
            every=settings.forecast_seconds,
            min_cases=settings.forecast_min_cases,
        ),
        name="stats-forecasts",
    )


def create_app(settings: StatsSettings | None = None) -> FastAPI:
    settings = settings or StatsSettings()
    app = build_app(
        service="stats",
        title="Suivi stats",
        settings=settings,
        migrations=Path(__file__).parent / "migrations",
        shared_sql=("projection",),
        routers=[
            router,
            open_data_router,
            reports_router,
            reports_open_data_router,
            web_router,
            reports_web_router,
        ],
        on_start=_start,
    )
    app.mount(STATIC, static_files(), name="static")
    mount_static(app)  # the shared look (suivi.css), under the dashboard's own stylesheet
    return app
