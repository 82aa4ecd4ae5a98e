"""workflow: agents move cases through their procedure's steps; legal deadlines and tacit decisions.

It opens each case when it sees `CaseSubmitted` (`consumers.py`), publishes its own events through its
outbox relay, and watches deadlines (`service.check_deadlines`).
Run alone: `uvicorn services.workflow.app:create_app --factory --port 8002`.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
from fastapi import FastAPI

from services.workflow.api import router
from services.workflow.clock import Clock, SystemClock
from services.workflow.consumers import make_consumer
from services.workflow.domain import Conflict, Forbidden, NotFound, WorkflowError
from services.workflow.queries import SCHEMA
from services.workflow.service import check_deadlines, check_fix_checks
from services.workflow.settings import WorkflowSettings
from shared.app import build_app
from shared.auth import TokenVerifier
from shared.bus import raise_if_cancelling
from shared.eventstore import OutboxRelay
from shared.runtime import Runtime

log = logging.getLogger(__name__)


async def watch_deadlines(app: FastAPI, runtime: Runtime) -> None:
    settings: WorkflowSettings = app.state.settings
    while True:
        try:
            await check_deadlines(
                runtime.pool,
                catalogue=app.state.catalogue,
                clock=app.state.clock,
                warn_days=settings.warn_days,
            )
            await check_fix_checks(runtime.pool, catalogue=app.state.catalogue, clock=app.state.clock)
        except Exception as exc:
            raise_if_cancelling()
            log.warning(
                "deadline check failed, trying again in %.0f s: %s", settings.deadline_check_seconds, exc
            )
        await asyncio.sleep(settings.deadline_check_seconds)


async def _start(app: FastAPI, runtime: Runtime) -> None:
    app.state.http = httpx.AsyncClient()
    app.state.notify_http = httpx.AsyncClient()
    runtime.closers += [app.state.http.aclose, app.state.notify_http.aclose]
    runtime.start(OutboxRelay(pool=runtime.pool, js=runtime.js, schema=SCHEMA).run(), name="workflow-relay")
    runtime.start(
        make_consumer(runtime, catalogue=app.state.catalogue, clock=app.state.clock).run(),
        name="workflow-consumer",
    )
    runtime.start(watch_deadlines(app, runtime), name="workflow-deadlines")


def create_app(settings: WorkflowSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or WorkflowSettings()
    app = build_app(
        service="workflow",
        title="Suivi workflow",
        settings=settings,
        migrations=Path(__file__).parent / "migrations",
        shared_sql=("eventstore", "projection", "idempotency"),
        routers=[router],
        on_start=_start,
        domain_statuses={Conflict: 409, Forbidden: 403, NotFound: 404, WorkflowError: 422},
    )
    app.state.clock = clock or SystemClock()
    app.state.token_verifier = TokenVerifier(settings)
    return app
