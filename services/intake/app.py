"""intake: validates submissions against the procedure catalogue, issues the case and its tracking code,
and records the case's first events (published to JetStream by the outbox relay started here). Citizens
answer requests here too, with their tracking code (`replies.py`), and rate the service (`ratings.py`); a
city's admin imports past cases (`imports_api.py`). Citizens' files (plans, photos) are checked and kept
in an object store (`documents.py`). Citizens, or agents at a counter for them, do a
procedure from its web page (`pages.py`: `/demarches`, one form per procedure, the receipt).

Run alone: `uvicorn services.intake.app:create_app --factory --port 8001`.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from services.intake import documents, erasure, open311, places
from services.intake.api import router
from services.intake.consumers import make_consumer
from services.intake.fix_checks import router as fix_checks_router
from services.intake.imports_api import PATH as IMPORT_PATH
from services.intake.imports_api import ImportBodyLimit
from services.intake.imports_api import router as imports_router
from services.intake.internal import router as internal_router
from services.intake.nearby_api import internal_router as nearby_internal_router
from services.intake.nearby_api import router as nearby_router
from services.intake.pages import router as pages_router
from services.intake.queries import SCHEMA
from services.intake.ratings import router as ratings_router
from services.intake.replies import make_limiter
from services.intake.replies import router as replies_router
from services.intake.settings import IntakeSettings
from shared.app import build_app
from shared.auth import TokenVerifier
from shared.eventstore import OutboxRelay
from shared.http import OwnLimit, RouteBodyLimits
from shared.objectstore import ObjectStore
from shared.open311_http import install_open311
from shared.pages import mount_static
from shared.procedures import FieldType
from shared.runtime import Runtime


async def _start_relay(app: FastAPI, runtime: Runtime) -> None:
    settings: IntakeSettings = app.state.settings
    app.state.documents = ObjectStore(settings.documents_store_config)  # connects at its first request
    runtime.start(OutboxRelay(pool=runtime.pool, js=runtime.js, schema=SCHEMA).run(), name="intake-relay")
    runtime.start(make_consumer(runtime).run(), name="intake-decisions")
    runtime.start(
        erasure.run_sweeps(
            runtime.pool, app.state.documents, app.state.catalogue, settings.retention_sweep_seconds
        ),
        name="intake-retention",
    )


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    app = build_app(
        service="intake",
        title="Suivi intake",
        settings=settings,
        migrations=Path(__file__).parent / "migrations",
        shared_sql=("eventstore", "projection", "idempotency"),
        routers=[
            router,
            replies_router,
            ratings_router,
            fix_checks_router,
            imports_router,
            erasure.router,
            internal_router,
            nearby_router,
            nearby_internal_router,
            pages_router,
            *open311.ROUTERS,  # last: its fallback answers anything else under /open311/v2
        ],
        answers={
            "POST /v1/cases": (404,),  # an unknown procedure
            "POST /v1/replies": (404, 409, 410, 429),  # an unknown code; a concurrent change; too many misses
            "POST /v1/ratings": (404, 409, 410, 429),  # an unknown code; not decided or rated already; misses
            "POST /v1/fix-checks": (
                404,
                409,
                410,
                429,
            ),  # an unknown code; not done or answered already; erased; misses
        },
        on_start=_start_relay,
        max_body_bytes=max(
            settings.max_body_bytes, settings.import_max_body_bytes, settings.upload_max_body_bytes
        ),
    )
    _check_upload_limit(app, settings)
    install_open311(app)
    # A request with files is its JSON part for the route, the files beside it (inside the limits).
    app.add_middleware(
        documents.MultipartJson,
        routes=documents.UPLOAD_ROUTES,
        json_limit=settings.max_body_bytes,
        max_part=documents.largest_file(app.state.catalogue) + 1,
    )
    # Outermost: the usual limit for every route; the import's own (larger) one for the import, and
    # requests with files (multipart/form-data) theirs.
    uploads = OwnLimit(
        settings.upload_max_body_bytes, ("multipart/form-data",), refusal=documents.UploadBodyLimit
    )
    app.add_middleware(
        RouteBodyLimits,
        limit=settings.max_body_bytes,
        routes={
            IMPORT_PATH: OwnLimit(settings.import_max_body_bytes, refusal=ImportBodyLimit),
            **dict.fromkeys(documents.UPLOAD_ROUTES, uploads),
            # The HTML form of a procedure with file fields posts its files to itself (`pages.py`).
            **{
                f"/demarches/{p.code}": uploads
                for p in app.state.catalogue.all_latest()
                if any(f.type is FieldType.FILE for f in p.fields)
            },
        },
    )
    for error, handler in documents.STORE_ERRORS.items():
        app.add_exception_handler(error, handler)
    app.state.reply_limiter = make_limiter(settings.reply_miss_limit)
    app.state.geocoder = places.make_geocoder(settings, httpx.AsyncClient())
    # Admins' tokens; without an identity provider, only the import is unavailable (503, saying why).
    auth = settings.agent_auth
    app.state.token_verifier = TokenVerifier(auth) if auth is not None else None
    mount_static(app)  # the pages' look, shared with tracking's and stats' (`shared/pages.py`)
    return app


def _check_upload_limit(app: FastAPI, settings: IntakeSettings) -> None:
    """A form whose files could not all be sent in one request stops start-up, saying what to change."""
    largest = documents.largest_upload(app.state.catalogue)
    if largest + settings.max_body_bytes > settings.upload_max_body_bytes:
        raise ValueError(
            f"a procedure's files take up to {largest} bytes in one request: set "
            f"INTAKE_UPLOAD_MAX_BODY_BYTES to at least {largest + settings.max_body_bytes} "
            f"(it is {settings.upload_max_body_bytes}), or lower the procedure's max_bytes or max_files"
        )
