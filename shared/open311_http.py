"""Open311 GeoReport v2's HTTP edge, shared by intake (services, reports) and tracking (requests).

Every answer is JSON or XML after the path's suffix (`services.json`, `services.xml`); errors are the
spec's list of `{code, description}` (XML: `<errors><error><code/><description/></error></errors>`) with
status 400, 403 or 404, and 503 when a backing service is briefly unavailable, never FastAPI's 422 shape
nor a problem document: `Open311Route` catches them on the route itself. Descriptions are in the caller's
language (`?lang=`, `Accept-Language`), as every message of the app.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from shared.http import ApiError, DomainError, language_of, route_template, validation_errors
from shared.i18n import translate
from shared.open311 import Open311Services

log = logging.getLogger(__name__)

PREFIX = "/open311/v2"
JSON, XML = "json", "xml"
MEDIA_TYPES = {JSON: "application/json; charset=utf-8", XML: "application/xml; charset=utf-8"}
# The element of each item of a list, in XML (`<services><service>...`).
XML_ITEMS = {
    "services": "service",
    "attributes": "attribute",
    "values": "value",
    "service_requests": "request",
    "errors": "error",
}
# Characters XML 1.0 cannot hold at all, even escaped (a message may quote what the client sent).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    ConnectionError,
    OSError,
    TimeoutError,
)


class Open311Error(Exception):
    """An Open311 error answer: its status and one description per problem, in the caller's language."""

    def __init__(self, status: int, descriptions: list[str], *, headers: dict[str, str] | None = None):
        super().__init__("; ".join(descriptions))
        self.status, self.descriptions, self.headers = status, descriptions, headers or {}


def refuse(status: int, key: str, lang: str, **params: object) -> Open311Error:
    """An error with one description, the message `key` (see `shared/locales/`)."""
    return Open311Error(status, [translate(key, lang, **params)])


def format_of(request: Request) -> str:
    return XML if request.url.path.endswith(".xml") else JSON


def datetime_text(at: datetime) -> str:
    """ISO 8601 in UTC with its zone, to the second (`2025-06-01T08:30:00Z`): what the spec asks, what
    RFC 3339 takes, and what the open311-validator's pattern accepts (no offset, no fraction)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Answers ----------------------------------------------------------------------------------------


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("\ufffd", str(value))


def _fill(parent: ET.Element, name: str, value: object) -> None:
    if value is None:
        return
    element = ET.SubElement(parent, name)
    if isinstance(value, list):
        for item in value:
            _fill_item(element, XML_ITEMS.get(name, "item"), item)
    elif isinstance(value, dict):
        for key, inner in value.items():
            _fill(element, key, inner)
    else:
        element.text = _text(value)


def _fill_item(parent: ET.Element, name: str, item: object) -> None:
    if isinstance(item, dict):
        element = ET.SubElement(parent, name)
        for key, inner in item.items():
            _fill(element, key, inner)
    else:
        _fill(parent, name, item)


def to_xml(root: str, content: list[Any] | dict[str, Any]) -> bytes:
    """`content` as the spec's XML: a list's items are named after `XML_ITEMS`, absent (None) values are
    left out, booleans are `true`/`false`; ElementTree escapes the text."""
    element = ET.Element(root)
    if isinstance(content, list):
        for item in content:
            _fill_item(element, XML_ITEMS[root], item)
    else:
        for key, value in content.items():
            _fill(element, key, value)
    text: bytes = ET.tostring(element, encoding="utf-8")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + text


def answer(
    fmt: str,
    content: list[Any] | dict[str, Any],
    *,
    root: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """An Open311 answer in the format asked; `root` names the XML document (`services`...)."""
    if fmt == XML:
        body = to_xml(root, content)
    else:
        body = json.dumps(content, ensure_ascii=False, allow_nan=False).encode("utf-8", errors="replace")
    return Response(body, status_code=status, media_type=MEDIA_TYPES[fmt], headers=headers)


def error_answer(fmt: str, error: Open311Error) -> Response:
    errors = [{"code": error.status, "description": d} for d in error.descriptions]
    return answer(fmt, errors, root="errors", status=error.status, headers=error.headers)


# --- Errors caught on the route -----------------------------------------------------------------------


# What a spec's parameter takes, said when a value is not of its form (pydantic says it in English only).
_FORMS = {"start_date": "open311.datetime", "end_date": "open311.datetime", "status": "open311.status"}


def _invalid(error: Any, problem: dict[str, str], lang: str) -> str:
    name = problem["field"]
    if error["type"] == "string_pattern_mismatch":
        return translate(_FORMS.get(name, "open311.invalid_parameter"), lang, name=name)
    return f"{name}: {problem['message']}"


def _as_open311(request: Request, exc: Exception) -> Open311Error:
    lang = language_of(request)
    if isinstance(exc, Open311Error):
        return exc
    if isinstance(exc, RequestValidationError):
        problems = zip(exc.errors(), validation_errors(exc, lang), strict=True)
        return Open311Error(400, [_invalid(error, problem, lang) for error, problem in problems])
    if isinstance(exc, ApiError):
        status = 400 if exc.status == 422 else exc.status
        described = [e["message"] for e in exc.errors] or [translate(exc.key, lang, **exc.params)]
        return Open311Error(status, described, headers=exc.headers)
    if isinstance(exc, DomainError):
        return refuse(400, exc.key, lang, **exc.params)
    if isinstance(exc, StarletteHTTPException):
        return refuse(exc.status_code, "open311.unknown_resource", lang, path=request.url.path[:200])
    if isinstance(exc, _UNAVAILABLE):
        log.warning(
            "%s %s: a backing service is unavailable: %r", request.method, route_template(request), exc
        )
        return Open311Error(
            503,
            [translate("error.service_unavailable", lang, detail=type(exc).__name__)],
            headers={"Retry-After": "2"},
        )
    reference = uuid.uuid4().hex[:12]
    log.exception(
        "unexpected error on %s %s (reference %s)", request.method, route_template(request), reference
    )
    return refuse(500, "error.internal", lang, reference=reference)


class Open311Route(APIRoute):
    """A route whose every error is answered in Open311's shape and the path's format, FastAPI's own
    validation errors included (they never reach the app's problem handlers)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                return error_answer(format_of(request), _as_open311(request, exc))

        return guarded


def _methods_of(request: Request, routers: tuple[APIRouter, ...]) -> set[str]:
    """The methods the Open311 routes take on this path (a known resource asked with another method);
    none for an unknown one."""
    methods: set[str] = set()
    for route in (r for router in routers for r in router.routes):
        if isinstance(route, APIRoute) and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods or set()
    return methods


def open311_router(**options: Any) -> APIRouter:
    """A router under the prefix whose routes answer every error in Open311's shape; `options` go on to
    `APIRouter` (`tags`, `include_in_schema`)."""
    return APIRouter(prefix=PREFIX, route_class=Open311Route, **options)


Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def in_both_formats(
    route: Callable[..., Callable[[Endpoint], Endpoint]], path: str, **options: Any
) -> Callable[[Endpoint], Endpoint]:
    """The endpoint at `{path}.json` and `{path}.xml`, `route` (`router.get`, `router.post`) taking the
    same `options` for both; the endpoint answers in the format asked (`format_of`). The XML route is
    named `{endpoint}_xml`, so that each has its own name and OpenAPI `operationId`."""

    def register(endpoint: Endpoint) -> Endpoint:
        route(f"{path}.{JSON}", **options)(endpoint)
        route(f"{path}.{XML}", name=f"{endpoint.__name__}_{XML}", **options)(endpoint)
        return endpoint

    return register


def fallback_router(*routers: APIRouter) -> APIRouter:
    """Anything else under the prefix, answered in Open311's shape: a known resource asked with another
    method (405), an unknown format (400) or resource (404). Include it after `routers`, the app's own."""
    router = open311_router(include_in_schema=False)

    @router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def unknown(request: Request, rest: str) -> Response:
        lang = language_of(request)
        if allowed := _methods_of(request, routers):
            headers = {"Allow": ", ".join(sorted(allowed))}
            raise Open311Error(405, [translate("error.method_not_allowed", lang)], headers=headers)
        name = rest.rsplit("/", 1)[-1]
        if "." in name and (suffix := name.rsplit(".", 1)[1]) not in (JSON, XML):
            raise refuse(400, "open311.unknown_format", lang, format=suffix[:20])
        raise refuse(404, "open311.unknown_resource", lang, path=f"{PREFIX}/{rest}"[:200])

    return router


def with_fallback(*routers: APIRouter) -> list[APIRouter]:
    """A service's Open311 routers, then the fallback for the rest of the prefix: what `build_app` takes
    (last of its routers)."""
    return [*routers, fallback_router(*routers)]


# --- The app's services and OpenAPI document --------------------------------------------------------


def install_open311(app: FastAPI) -> None:
    """After `build_app` (its routers included `with_fallback(...)`, last): the services, once, and the
    document."""
    app.state.open311_services = Open311Services(app.state.catalogue)
    document_open311(app)


def services_of(request: Request) -> Open311Services:
    """The app's Open311 services (`install_open311`)."""
    services: Open311Services = request.app.state.open311_services
    return services


class Open311ErrorItem(BaseModel):
    code: int = Field(description="the HTTP status: 400 (a bad request), 403 (the API key), 404, 503")
    description: str = Field(description="what is wrong and what to do, in the caller's language")


# A problem document still answers what never reaches the route (a body over the size limit).
_NOT_OURS = {"413"}


def document_open311(app: FastAPI) -> None:
    """In the app's OpenAPI document, the Open311 operations answer errors as a list of `{code,
    description}` (JSON or XML after the path's suffix), 400 where FastAPI would say 422."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = plain()
            schema["components"]["schemas"]["Open311Error"] = Open311ErrorItem.model_json_schema()
            for path, item in schema.get("paths", {}).items():
                if path.startswith(PREFIX):
                    for operation in item.values():
                        _document(operation, XML if path.endswith(".xml") else JSON)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document(operation: dict[str, Any], fmt: str) -> None:
    responses: dict[str, Any] = operation["responses"]
    if "422" in responses:
        responses.setdefault("400", {"description": "The request is invalid: each problem is described."})
        del responses["422"]
    errors = {"type": "array", "items": {"$ref": "#/components/schemas/Open311Error"}}
    for status, response in responses.items():
        if status in _NOT_OURS or not status.isdigit():
            continue
        if fmt == XML:
            response["content"] = {"application/xml": {"schema": {"type": "string"}}}
        elif int(status) >= 400:
            response["content"] = {"application/json": {"schema": errors}}
    operation["responses"] = dict(sorted(responses.items()))
