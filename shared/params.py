"""A hot route's path and query parameters as one pydantic model, validated in one call.

FastAPI solves a route's parameters one by one, in Python, at every request: on the public lookup
(`GET /v1/track/{code}`) that was a sixth of its time. A route on the hot path takes only the `Request`,
reads its parameters with `read(Model, request)` and documents them with `documented(Model, path=...)`
(its `openapi_extra`). A bad value is the same `RequestValidationError` FastAPI raises, so it gets the same
422 in the caller's language, naming the field.

The same goes for what such a route reads from the request beside its body: the language
(`shared.http.language_of`, documented as `LANGUAGE`) and the `Idempotency-Key` (`idempotency_key`,
documented as `IDEMPOTENCY_KEY`).

Such a route is added with `route_class_override=DirectRoute`: FastAPI then calls it with the request
as it is, and sends the `Response` it returns, with nothing to solve or serialize in between (its
OpenAPI document is FastAPI's as usual).

Every other route declares its parameters the usual FastAPI way: this is for the few that a peak hits.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.http import ApiError

Params = TypeVar("Params", bound=BaseModel)

# The request's language (`shared.http.Lang`), as every route documents it.
LANGUAGE = [
    {
        "name": "lang",
        "in": "query",
        "required": False,
        "description": "fr or en; overrides Accept-Language",
        "schema": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Lang"},
    },
    {
        "name": "accept-language",
        "in": "header",
        "required": False,
        "schema": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Accept-Language"},
    },
]


Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


class DirectRoute(APIRoute):
    """A route whose endpoint takes only the `Request` and returns its `Response`, called as it is.

    Its ASGI app is the endpoint's call and the response's: without dependencies there is no exit stack
    to keep for them, and an exception it raises reaches the app's handlers through Starlette's
    `ExceptionMiddleware`, which every app has, as it would from FastAPI's own wrapper."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        super().__init__(path, endpoint, **options)
        d = self.dependant
        taken = d.dependencies or d.path_params or d.query_params or d.header_params or d.body_params
        if taken or d.request_param_name is None:
            raise TypeError(
                f"{path}: a DirectRoute's endpoint takes the Request only, and its router no dependency"
            )
        self.app = _direct(self.endpoint)

    def get_route_handler(self) -> Endpoint:
        handler: Endpoint = self.endpoint
        return handler


def _direct(endpoint: Endpoint) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await endpoint(Request(scope, receive, send))
        await response(scope, receive, send)

    return app


def read(model: type[Params], request: Request) -> Params:
    """The request's path and query parameters as `model` (query parameters it does not name are
    ignored, as FastAPI does), or the `RequestValidationError` FastAPI would raise."""
    path = request.path_params
    try:
        return model.model_validate({**request.query_params, **path})
    except ValidationError as exc:
        raise RequestValidationError(
            [
                {**error, "loc": ("path" if error["loc"][0] in path else "query", *error["loc"])}
                for error in exc.errors()
            ]
        ) from None


def documented(
    model: type[BaseModel], *, path: tuple[str, ...] = (), language: bool = True
) -> dict[str, Any]:
    """`openapi_extra` naming `model`'s fields as the route's parameters: those in `path` in the path, the
    others in the query (and the request's language, with `language`)."""
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    parameters = []
    for name, field in schema["properties"].items():
        where = "path" if name in path else "query"
        parameter: dict[str, Any] = {
            "name": name,
            "in": where,
            "required": where == "path" or name in required,
        }
        if "description" in field:
            parameter["description"] = field["description"]
        parameter["schema"] = {key: value for key, value in field.items() if key != "description"}
        parameters.append(parameter)
    return {"parameters": parameters + (LANGUAGE if language else [])}


# `shared.deps.IdempotencyKey`, as the routes taking it document it.
IDEMPOTENCY_KEY = {
    "name": "idempotency-key",
    "in": "header",
    "required": False,
    "description": "retries with the same key record the request once",
    "schema": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Idempotency-Key"},
}


def idempotency_key(request: Request) -> str | None:
    """The request's `Idempotency-Key`, checked (`checked_idempotency_key`)."""
    return checked_idempotency_key(request.headers.get("idempotency-key"))


def checked_idempotency_key(key: str | None) -> str | None:
    """`key`, or a 400 saying what a key must be: 1 to 200 printable characters, not only spaces."""
    if key is not None and not (1 <= len(key) <= 200 and key.isprintable() and key.strip()):
        raise ApiError("error.idempotency_key_invalid")
    return key
