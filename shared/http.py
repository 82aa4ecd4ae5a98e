"""What every service's HTTP edge shares: errors as JSON in the caller's language, one mapping per app,
a body-size limit, the language of the request, and health/readiness probes.

Error bodies are RFC 9457 problems (`application/problem+json`, schema `ProblemBody`):
`{"type", "title", "status", "detail", "errors": [{field, message}]}`.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.i18n import negotiate, translate

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error a person can act on. `key` names the message in `shared/locales/`."""

    status = 400

    def __init__(
        self,
        key: str,
        *,
        status: int | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, object] | None = None,
        **params: object,
    ) -> None:
        super().__init__(key)
        self.key, self.params, self.errors, self.headers = key, params, errors or [], headers or {}
        # Machine-readable facts beside the message (e.g. a conflict's `current_version`).
        self.extra = extra or {}
        if status is not None:
            self.status = status


class DomainError(Exception):
    """A rule of a service's domain said no. It carries a stable message key and its parameters, never an
    HTTP status: each app's error map (`install_error_handlers(domain_statuses=...)`) decides that."""

    def __init__(self, key: str, *, extra: dict[str, object] | None = None, **params: object) -> None:
        super().__init__(key)
        self.key, self.params = key, dict[str, Any](params)
        # Machine-readable facts beside the message (e.g. a conflict's `current_version`).
        self.extra = extra or {}


DomainStatuses = Mapping[type[DomainError], int]


def _status_of(exc: DomainError, statuses: DomainStatuses) -> int:
    for cls in type(exc).__mro__:
        if cls in statuses:
            return statuses[cls]
    return 422


def route_template(request: Request) -> str:
    """The route's template (`/v1/track/{code}`), never the raw path: a path may hold a tracking code."""
    return str(getattr(request.scope.get("route"), "path", "(no route)"))


_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _allowed_methods(request: Request) -> str:
    """Every documented method of the path: Starlette's 405 names only those of the first route that
    matched, when one path is served by several routes (GET and POST declared apart)."""
    path, methods = request.url.path, set()
    for template, item in request.app.openapi().get("paths", {}).items():
        parts = re.split(r"(\{[^/}]+\})", template)
        pattern = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
        if re.fullmatch(pattern, path):
            methods |= {m.upper() for m in item if m in _HTTP_METHODS}
    return ", ".join(sorted(methods))


def language_of(request: Request) -> str:
    return negotiate(
        query_lang=request.query_params.get("lang"), accept_language=request.headers.get("accept-language")
    )


async def _lang_dependency(
    request: Request,
    lang: Annotated[str | None, Query(description="fr or en; overrides Accept-Language")] = None,
    accept_language: Annotated[str | None, Header()] = None,
) -> str:
    return language_of(request)


Lang = Annotated[str, Depends(_lang_dependency)]


PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldProblem(BaseModel):
    field: str = Field(description="where the problem is: `data.district`, `applicant.email`, `body`...")
    message: str = Field(description="what is wrong and what to do, in the caller's language")


class ProblemBody(BaseModel):
    """Every error answer (RFC 9457). Other members may follow, e.g. `current_version` on a conflict or
    `reference` on an internal error."""

    model_config = ConfigDict(extra="allow", title="Problem")
    type: str = Field(description="a stable key naming the problem, e.g. `error.invalid_request`")
    title: str
    status: int
    detail: str = Field(description="what happened and what to do, in the caller's language")
    errors: list[FieldProblem] | None = Field(default=None, description="each invalid field, when any")


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        # A message may quote what the client sent; a lone surrogate there is no UTF-8, and must not
        # turn a 4xx into a 500.
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", errors="replace")


def problem(
    status: int,
    key: str,
    lang: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, object] | None = None,
    **params: object,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": key,
        "title": key.split(".", 1)[-1].replace("_", " "),
        "status": status,
        "detail": translate(key, lang, **params),
    }
    if errors:
        body["errors"] = errors
    body.update(extra or {})
    return ProblemResponse(body, status_code=status, headers=headers)


# --- Text PostgreSQL can store ------------------------------------------------------------------------


def unstorable(value: object) -> str | None:
    """The message key saying why `value` (a string, or JSON data holding strings) cannot be stored, or
    None. PostgreSQL stores neither NUL characters nor lone surrogates (which are not Unicode text)."""
    if isinstance(value, str):
        if "\x00" in value:
            return "field.nul_character"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "field.not_unicode"
        return None
    items: list[object] = []
    if isinstance(value, dict):
        items = [part for pair in value.items() for part in pair]
    elif isinstance(value, list | tuple):
        items = list(value)
    return next((key for item in items if (key := unstorable(item)) is not None), None)


def _storable(value: str) -> str:
    if (key := unstorable(value)) is not None:
        raise PydanticCustomError("unstorable", "text that cannot be stored", {"key": key})
    return value


# A string that PostgreSQL can store: use it for every string of a request that is written.
StoredStr = Annotated[str, AfterValidator(_storable)]


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


_PYDANTIC_KEYS = {
    "missing": "field.required",
    "string_type": "field.type_string",
    "int_type": "field.type_integer",
    "int_parsing": "field.type_integer",
    "float_type": "field.type_number",
    "bool_type": "field.type_boolean",
    "dict_type": "field.type_object",
    "model_type": "field.type_object",
    "model_attributes_type": "field.type_object",
    "string_too_short": "field.too_short",
    "string_too_long": "field.too_long",
    "string_unicode": "field.not_unicode",
}


def validation_errors(exc: RequestValidationError, lang: str) -> list[dict[str, str]]:
    out = []
    for err in exc.errors():
        ctx = err.get("ctx") or {}
        key = ctx.get("key") if err["type"] == "unstorable" else _PYDANTIC_KEYS.get(err["type"])
        params = {"min": ctx.get("min_length"), "max": ctx.get("max_length")}
        message = translate(key, lang, **params) if key else str(err["msg"])
        if err["type"] == "extra_forbidden":
            message = translate("field.unexpected", lang, name=err["loc"][-1])
        if err["type"] == "literal_error" and err["loc"][-1] == "channel":
            message = translate("field.channel", lang)
        out.append({"field": _field_path(tuple(err["loc"])), "message": message})
    return out


def install_error_handlers(app: FastAPI, *, domain_statuses: DomainStatuses | None = None) -> None:
    """The one place where exceptions become HTTP answers for this app.

    `domain_statuses` maps the app's domain errors to HTTP statuses (the most specific class wins; a
    domain error not listed is a 422)."""
    statuses: DomainStatuses = domain_statuses or {}

    @app.exception_handler(DomainError)
    async def _domain_error(request: Request, exc: DomainError) -> Response:
        return problem(
            _status_of(exc, statuses), exc.key, language_of(request), extra=exc.extra, **exc.params
        )

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return problem(
            exc.status,
            exc.key,
            language_of(request),
            errors=exc.errors,
            headers=exc.headers,
            extra=exc.extra,
            **exc.params,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        lang = language_of(request)
        json_error = next((e for e in exc.errors() if e["type"] == "json_invalid"), None)
        if json_error is not None:
            detail = (json_error.get("ctx") or {}).get("error", "syntax error")
            return problem(400, "error.malformed_json", lang, detail=detail)
        return problem(422, "error.invalid_request", lang, errors=validation_errors(exc, lang))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        lang, headers = language_of(request), dict(exc.headers or {})  # e.g. a 405's `Allow`
        if exc.status_code == 404:
            return problem(404, "error.not_found", lang, headers=headers, path=request.url.path)
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
            return problem(405, "error.method_not_allowed", lang, headers=headers)
        if exc.status_code == 400:
            return problem(400, "error.unreadable_body", lang, headers=headers)
        return problem(exc.status_code, "error.http", lang, headers=headers, detail=exc.detail)

    @app.exception_handler(asyncpg.PostgresConnectionError)
    @app.exception_handler(asyncpg.InterfaceError)
    @app.exception_handler(asyncpg.CannotConnectNowError)
    @app.exception_handler(ConnectionError)
    @app.exception_handler(OSError)
    @app.exception_handler(TimeoutError)
    async def _unavailable(request: Request, exc: Exception) -> Response:
        # Nothing was acknowledged, but a connection lost during COMMIT may have committed: a retry is
        # exact with the same Idempotency-Key (intake) or expected version (workflow); the message says so.
        log.warning(
            "%s %s: a backing service is unavailable: %r", request.method, route_template(request), exc
        )
        return problem(
            503,
            "error.service_unavailable",
            language_of(request),
            headers={"Retry-After": "2"},
            detail=type(exc).__name__,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        reference = uuid.uuid4().hex[:12]
        log.exception(
            "unexpected error on %s %s (reference %s)", request.method, route_template(request), reference
        )
        return problem(500, "error.internal", language_of(request), reference=reference)


class BodySizeLimit:
    """Refuses request bodies over `limit` bytes with 413, before the app reads them."""

    # The message key of the 413 (parameters `size` and `limit`).
    refusal = "error.body_too_large"

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _without_body(scope):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send, int(declared))
            return
        received, refused = 0, False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                # Answer now; to the app the client simply went away, and its answer goes nowhere.
                refused = True
                await self._refuse(scope, receive, send, received)
                return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: int) -> None:
        request = Request(scope)
        response = problem(413, self.refusal, language_of(request), size=size, limit=self.limit)
        await response(scope, receive, send)


@dataclass(frozen=True)
class OwnLimit:
    """A route's own body limit (`RouteBodyLimits`): `limit` bytes, for requests of `media_types` only
    (any, if empty), answered over it by `refusal` (a `BodySizeLimit`, or a subclass whose 413 says
    more, e.g. what to do instead)."""

    limit: int
    media_types: tuple[str, ...] = ()
    refusal: type[BodySizeLimit] = BodySizeLimit


class RouteBodyLimits:
    """`limit` bytes for every request, except those to the paths given an `OwnLimit` (an import, uploads).

    Outside the app's own `BodySizeLimit` (`build_app(max_body_bytes=...)`), which must then be set to
    the largest of them."""

    def __init__(self, app: ASGIApp, *, limit: int, routes: Mapping[str, OwnLimit]) -> None:
        self.usual = BodySizeLimit(app, limit=limit)
        self.own = {
            path.rstrip("/"): (own.media_types, own.refusal(app, limit=own.limit))
            for path, own in routes.items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.usual
        if scope["type"] == "http" and (own := self.own.get(scope["path"].rstrip("/"))) is not None:
            media_types, own_limit = own
            if not media_types or media_type_of(scope) in media_types:
                limit = own_limit
        await limit(scope, receive, send)


# Strings (escapes included) hold no structure: drop them, then keep only the brackets.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(body: bytes, *, stop_above: int | None = None) -> int:
    """How deeply objects and lists nest in a JSON text (`{}` is 1), counted without parsing it."""
    depth = deepest = 0
    for byte in _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS):
        depth += 1 if byte in b"[{" else -1
        if depth > deepest:
            deepest = depth
            if stop_above is not None and deepest > stop_above:
                break
    return deepest


class JsonDepthLimit:
    """Refuses, with 400, JSON bodies that nest objects or lists more than `limit` levels deep, before the
    app parses them: no request needs it, and deep nesting breaks parsers and serializers (a 500).

    Keep it inside `BodySizeLimit`: the body it holds in memory is bounded there."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _without_body(scope) or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in messages)
        if json_depth(body, stop_above=self.limit) > self.limit:
            lang = language_of(Request(scope))
            await problem(400, "error.too_deep", lang, limit=self.limit)(scope, receive, send)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def _without_body(scope: Scope) -> bool:
    """A GET or HEAD that declares no body: nothing for the body limits to look at (the lookups' path)."""
    if scope["method"] not in ("GET", "HEAD"):
        return False
    return not any(name in (b"content-length", b"transfer-encoding") for name, _ in scope["headers"])


def media_type_of(scope: Scope) -> str:
    """The request's media type, lowercase, without parameters (`multipart/form-data`)."""
    content_type: bytes = dict(scope["headers"]).get(b"content-type", b"")
    return content_type.split(b";")[0].strip().lower().decode("latin-1")


def _is_json(scope: Scope) -> bool:
    content_type = media_type_of(scope)
    return content_type in ("", "application/json") or content_type.endswith("+json")


ReadinessCheck = Callable[[], Awaitable[object]]


def add_health_routes(
    app: FastAPI,
    checks: Callable[[Request], dict[str, ReadinessCheck]],
    *,
    required: tuple[str, ...],
    lagging: Callable[[Request], dict[str, dict[str, object]]] | None = None,
) -> None:
    """`/healthz`: the process answers. `/readyz`: it can serve requests, i.e. the `required` checks pass.

    The others are reported as `degraded` without making the pod unready: with NATS down, intake still
    takes submissions (its outbox holds them) and tracking still answers from its read model.
    """

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        results: dict[str, str] = {}
        for name, check in checks(request).items():
            try:
                await check()
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"unavailable: {exc or type(exc).__name__}"
        ready = all(results.get(name) == "ok" for name in required)
        degraded = sorted(name for name, result in results.items() if result != "ok")
        body: dict[str, object] = {"ready": ready, "degraded": degraded, "checks": results}
        # Consumers behind the stream (or held up by an outage) do not make the pod unready: it still
        # answers from what it folded. They are named here, with how far behind they are.
        if lagging is not None and (behind := lagging(request)):
            body["lagging"] = behind
        return JSONResponse(body, status_code=200 if ready else 503)
