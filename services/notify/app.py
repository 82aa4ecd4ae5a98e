"""notify: tells citizens what changed in their case (e-mail, SMS), and delivers signed webhooks of case
events to the city's other systems.

It folds every case event (`consumers.py`); the citizens' messages go out from `sender.py`, the webhooks
from `webhooks.py`, each from rows the fold wrote, so nothing is sent twice nor lost across a restart.
Run alone: `uvicorn services.notify.app:create_app --factory --port 8005`.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from services.notify import sender, webhooks
from services.notify.api import router
from services.notify.asyncapi import router as asyncapi_router
from services.notify.consumers import CONSUMER, SCHEMA, make_consumer
from services.notify.settings import NotifySettings
from services.notify.subscriptions import router as subscriptions_router
from shared.app import build_app
from shared.auth import TokenVerifier
from shared.runtime import Runtime


async def _start(app: FastAPI, runtime: Runtime) -> None:
    settings: NotifySettings = app.state.settings
    app.state.http = httpx.AsyncClient()
    app.state.intake = httpx.AsyncClient()
    runtime.closers += [app.state.http.aclose, app.state.intake.aclose]
    runtime.start(make_consumer(runtime, catalogue=app.state.catalogue).run(), name="notify-consumer")
    runtime.start(
        sender.Sender(
            pool=runtime.pool,
            http=app.state.http,
            intake=lambda: app.state.intake,
            settings=settings,
            catalogue=app.state.catalogue,
        ).run(),
        name="notify-sender",
    )
    runtime.start(webhooks.run_dispatcher(runtime, settings, consumer=CONSUMER), name="notify-webhooks")


def create_app(settings: NotifySettings | None = None) -> FastAPI:
    settings = settings or NotifySettings()
    app = build_app(
        service=SCHEMA,
        title="Suivi notify",
        settings=settings,
        migrations=Path(__file__).parent / "migrations",
        shared_sql=("projection",),
        routers=[router, subscriptions_router, asyncapi_router],
        on_start=_start,
    )
    app.state.token_verifier = TokenVerifier(settings)
    return app
