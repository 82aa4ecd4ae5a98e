"""intake: validates submissions against the procedure catalogue, issues the case and its tracking code,
and records the case's first events (published to JetStream by the outbox relay started here). Citizens
answer requests here too, with their tracking code (`replies.py`), and rate the service (`ratings.py`); a
city's admin imports past cases (`imports_api.py`).

Run alone: `uvicorn services.intake.app:create_app --factory --port 8001`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.intake.api import router
from services.intake.consumers import make_consumer
from services.intake.imports_api import BodyLimits
from services.intake.imports_api import router as imports_router
from services.intake.internal import router as internal_router
from services.intake.queries import SCHEMA
from services.intake.ratings import router as ratings_router
from services.intake.replies import make_limiter
from services.intake.replies import router as replies_router
from services.intake.settings import IntakeSettings
from shared.app import build_app
from shared.auth import TokenVerifier
from shared.eventstore import OutboxRelay
from shared.runtime import Runtime


async def _start_relay(app: FastAPI, runtime: Runtime) -> None:
    runtime.start(OutboxRelay(pool=runtime.pool, js=runtime.js, schema=SCHEMA).run(), name="intake-relay")
    runtime.start(make_consumer(runtime).run(), name="intake-decisions")


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    app = build_app(
        service="intake",
        title="Suivi intake",
        settings=settings,
        migrations=Path(__file__).parent / "migrations",
        shared_sql=("eventstore", "projection", "idempotency"),
        routers=[router, replies_router, ratings_router, imports_router, internal_router],
        answers={
            "POST /v1/cases": (404,),  # an unknown procedure
            "POST /v1/replies": (404, 409, 429),  # an unknown code; a concurrent change; too many misses
            "POST /v1/ratings": (404, 409, 429),  # an unknown code; not decided or rated already; misses
        },
        on_start=_start_relay,
        max_body_bytes=max(settings.max_body_bytes, settings.import_max_body_bytes),
    )
    # Outermost: the usual limit for every route, the import's own (larger) one for the import.
    app.add_middleware(BodyLimits, limit=settings.max_body_bytes, import_limit=settings.import_max_body_bytes)
    app.state.reply_limiter = make_limiter(settings.reply_miss_limit)
    # Admins' tokens; without an identity provider, only the import is unavailable (503, saying why).
    auth = settings.agent_auth
    app.state.token_verifier = TokenVerifier(auth) if auth is not None else None
    return app
