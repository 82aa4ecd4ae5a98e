"""Every service's OpenAPI document lists every answer an operation can give, errors included, each with
its `application/problem+json` body (`shared.http.ProblemBody`), so that a client generated from the
document handles them.

Most error answers follow from the operation's shape, the same way in every service:

| answer | when |
|---|---|
| 400 | a request body (not JSON, nested too deeply) or an `Idempotency-Key` header (malformed key) |
| 401, 403 | the operation needs an agent's token (an OpenAPI `security` requirement) |
| 404 | a path parameter names something that may not exist |
| 409 | a write addressed to an existing thing (a path parameter) may meet another change |
| 413 | a request body (over the app's size limit) |
| 422 | a request body or a parameter that can be invalid; an `Idempotency-Key` reused for another request |
| 500, 503 | every operation (a fault; PostgreSQL or NATS unavailable: retry) |

What the shape does not tell (a rate limit, a 404 for a code sent in the body) is declared per route,
with FastAPI's `responses=` or the app's `answers` (`shared.app.build_app`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from fastapi import FastAPI

from shared.http import PROBLEM_MEDIA_TYPE, ProblemBody

Answers = Mapping[str, Collection[int]]
Operation = dict[str, Any]

_DESCRIPTIONS = {
    400: "The request cannot be read: not JSON, nested too deeply, or a malformed header.",
    401: "No valid agent token.",
    403: "The agent's role or services do not allow this.",
    404: "What the request names does not exist.",
    409: "Conflict with the current state (another change came first, or the step does not allow it).",
    413: "The request body is too large.",
    422: "The request has errors: `errors` names each field and what is wrong.",
    429: "Too many requests or misses from this client: retry after `Retry-After` seconds.",
    500: "A fault on the server's side: `reference` identifies it in the logs.",
    503: "A backing service is briefly unavailable; nothing was recorded: retry after `Retry-After` seconds.",
}
_RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
}
_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# The format `shared.deps` checks in an `Idempotency-Key` (1 to 200 visible characters), for clients.
_HEADER_FORMATS = {
    "idempotency-key": {"minLength": 1, "maxLength": 200, "pattern": "^[ -~]*[!-~][ -~]*$"},
}
# Parameters every operation takes that cannot be invalid: they never make a 422.
_HARMLESS = {("query", "lang"), ("header", "accept-language")}


def document_errors(app: FastAPI, *, answers: Answers) -> None:
    """Makes `app.openapi()` document the error answers of every operation (see the module's table)."""
    plain: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = plain()
            _add_problem_schemas(schema)
            for path, item in schema.get("paths", {}).items():
                for method, operation in item.items():
                    if method in _METHODS:
                        _describe_headers(operation)
                        declared = answers.get(f"{method.upper()} {path}", ())
                        _document(operation, {*errors_of(operation), *declared})
            _drop_unused_validation_schemas(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def errors_of(operation: Operation) -> set[int]:
    """The error statuses an operation can answer, from its shape (see the module's table)."""
    statuses = {500, 503}
    parameters = {(p["in"], p["name"].lower()) for p in operation.get("parameters", [])}
    if "requestBody" in operation:
        statuses |= {400, 413, 422}
    if parameters - _HARMLESS:
        statuses.add(422)
    if ("header", "idempotency-key") in parameters:
        statuses |= {400, 422}
    if operation.get("security"):
        statuses |= {401, 403}
    if any(where == "path" for where, _ in parameters):
        statuses.add(404)
        if "requestBody" in operation:
            statuses.add(409)
    return statuses


def _describe_headers(operation: Operation) -> None:
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "header" and (rule := _HEADER_FORMATS.get(parameter["name"].lower())):
            schema = parameter.setdefault("schema", {})
            for option in schema.get("anyOf", [schema]):
                if option.get("type") == "string":
                    option.update(rule)


def _document(operation: Operation, statuses: set[int]) -> None:
    responses: dict[str, Any] = operation.get("responses", {})
    if responses.get("422", {}).get("description") == "Validation Error":
        del responses["422"]  # FastAPI's, for any parameter: `errors_of` knows better
    declared = {int(s) for s in responses if s.isdigit() and int(s) >= 400}
    problem = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for status in statuses | declared:
        answer = responses.setdefault(str(status), {})
        answer["description"] = answer.get("description") or _DESCRIPTIONS.get(status, "An error.")
        answer["content"] = problem
        if status in (429, 503):
            answer["headers"] = _RETRY_AFTER
    operation["responses"] = dict(sorted(responses.items()))


def _add_problem_schemas(schema: dict[str, Any]) -> None:
    problem = ProblemBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem


def _drop_unused_validation_schemas(schema: dict[str, Any]) -> None:
    """FastAPI's own 422 body is never sent (the app answers a Problem): drop its schemas."""
    components = schema.get("components", {}).get("schemas", {})
    text = str(schema["paths"])
    for name in ("HTTPValidationError", "ValidationError"):
        if f"/{name}'" not in text:
            components.pop(name, None)
