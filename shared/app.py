"""Building a service's FastAPI app the same way for every service.

The app loads its settings and the procedure catalogue when it is created (a bad definition file stops
start-up right there), and opens PostgreSQL, NATS and its background tasks in the lifespan.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.trace import Span
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http import (
    BodySizeLimit,
    DomainStatuses,
    JsonDepthLimit,
    add_health_routes,
    install_error_handlers,
)
from shared.openapi import Answers, document_errors
from shared.procedures import load_catalogue
from shared.runtime import Runtime, open_runtime
from shared.settings import ServiceSettings
from shared.telemetry import setup_logging, setup_telemetry, tracing

log = logging.getLogger(__name__)

OnStart = Callable[[FastAPI, Runtime], Awaitable[None]]


def build_app(
    *,
    service: str,
    title: str,
    settings: ServiceSettings,
    migrations: Path,
    shared_sql: tuple[str, ...],
    routers: list[APIRouter],
    on_start: OnStart | None = None,
    max_body_bytes: int = 64 * 1024,
    max_json_depth: int = 32,
    domain_statuses: DomainStatuses | None = None,
    answers: Answers | None = None,
) -> FastAPI:
    """`answers`: the error statuses of routes beyond what `shared.openapi` sees by itself, keyed by
    `"METHOD /path"` (e.g. `{"POST /v1/replies": (404, 409, 429)}`), for the OpenAPI document."""
    setup_logging(service=service, level=settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime(
            settings, service=service, schema=service, migrations=migrations, shared_sql=shared_sql
        ) as runtime:
            app.state.runtime = runtime
            if on_start is not None:
                await on_start(app, runtime)
            # What start-up built (the catalogue, modules, pools) lives as long as the process: out of the
            # collector's way, so that its passes during a peak look only at the requests' objects.
            gc.freeze()
            log.info("%s ready", service)
            yield

    # FastAPI's own telemetry off: the spans are FastAPIInstrumentor's (below), and its check of the
    # providers at every request costs the lookups.
    app = FastAPI(
        title=title,
        version="1",
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    app.state.catalogue = load_catalogue(settings.procedures_dir)
    install_error_handlers(app, domain_statuses=domain_statuses)
    for router in routers:
        add_routes(app, router)
    add_health_routes(
        app,
        lambda request: request.app.state.runtime.readiness_checks(),
        required=("postgresql",),
        lagging=lambda request: request.app.state.runtime.lagging(),
    )
    document_errors(app, answers=answers or {})
    app.add_middleware(JsonDepthLimit, limit=max_json_depth)  # inside the size limit: a bounded body
    app.add_middleware(RequestLog)
    app.add_middleware(BodySizeLimit, limit=max_body_bytes)
    setup_telemetry(service=service)
    if tracing():  # without anywhere to send spans, the requests skip the instrumentation altogether
        FastAPIInstrumentor.instrument_app(
            app,
            excluded_urls="healthz,readyz",
            server_request_hook=_redact_url,
            exclude_spans=["receive", "send"],
        )
    return app


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """The router's routes, as routes of the app itself.

    FastAPI includes a router as one route of the app that, on each request, matches the router's routes
    and then matches them again to handle the request (a tenth of a lookup's CPU). A route of ours is
    complete when its router adds it (its prefix, dependencies, tags and responses applied), so the app
    takes the routes as they are, in order, and matches each request once. A router with startup or
    shutdown handlers, or with routes that are not `APIRoute`s (a mount, an included router), would lose
    them: it is refused. Our routers have no lifespan of their own (the app's is `build_app`'s)."""
    if router.on_startup or router.on_shutdown or any(not isinstance(r, APIRoute) for r in router.routes):
        raise TypeError(f"build_app takes routers of routes only; {router.prefix or '/'} has more")
    app.router.routes.extend(router.routes)


_URL_ATTRIBUTES = ("http.target", "http.url", "url.path", "url.full", "url.query")


def _redact_url(span: Span, scope: dict[str, Any]) -> None:
    """Spans name the route template, never the raw URL: a path or query may hold a tracking code."""
    if not span.is_recording():
        return
    route = getattr(scope.get("route"), "path", None)
    for attribute in _URL_ATTRIBUTES:
        span.set_attribute(attribute, route or "(redacted)")


class RequestLog:
    """One line per request, naming the route template, never the raw path (it may hold a tracking code).

    Plain ASGI, not `BaseHTTPMiddleware`, which costs a task and a stream per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def remember_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, remember_status)
        finally:
            route = getattr(scope.get("route"), "path", "(no route)")
            if route not in ("/healthz", "/readyz"):
                elapsed = (time.perf_counter() - started) * 1000
                log.info("%s %s -> %d in %.1f ms", scope["method"], route, status, elapsed)
