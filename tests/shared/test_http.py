"""The shared HTTP edge: what it refuses before parsing, what it cannot store, how it answers."""

from __future__ import annotations

import json

import pytest

from shared.http import json_depth, problem, unstorable
from shared.openapi import errors_of


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"1", 0),
        (b"{}", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'{"a": "[[[{{{", "b": "\\"[[["}', 1),
        (b"[" * 40 + b"]" * 40, 40),
        (b"[[]][[[]]]", 3),
    ],
)
def test_nesting_is_measured_without_parsing_and_strings_hold_no_structure(text: bytes, depth: int) -> None:
    assert json_depth(text) == depth


def test_measuring_stops_past_the_limit() -> None:
    assert json_depth(b"[" * 100_000, stop_above=32) == 33


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("bonjour", None),
        ("a\x00b", "field.nul_character"),
        ("a\udfffb", "field.not_unicode"),
        ({"address": "rue", "lines": ["x", {"y": "z\x00"}]}, "field.nul_character"),
        ({"k\udfff": 1}, "field.not_unicode"),
        ([1, 2.5, True, None], None),
    ],
)
def test_text_postgresql_cannot_store_is_found_however_nested(value: object, key: str | None) -> None:
    assert unstorable(value) == key


def test_a_problem_quoting_a_lone_surrogate_still_renders() -> None:
    answer = problem(404, "error.unknown_procedure", "en", code="x\udfff", available="a")
    assert answer.media_type == "application/problem+json"
    assert json.loads(answer.body)["status"] == 404


def _operation(*parameters: tuple[str, str], body: bool = False, security: bool = False) -> dict[str, object]:
    operation: dict[str, object] = {"parameters": [{"in": w, "name": n} for w, n in parameters]}
    if body:
        operation["requestBody"] = {}
    if security:
        operation["security"] = [{"HTTPBearer": []}]
    return operation


@pytest.mark.parametrize(
    ("operation", "statuses"),
    [
        (_operation(("query", "lang"), ("header", "accept-language")), {500, 503}),
        (_operation(("path", "code")), {404, 422, 500, 503}),
        (_operation(("header", "idempotency-key"), body=True), {400, 413, 422, 500, 503}),
        (_operation(("query", "page"), security=True), {401, 403, 422, 500, 503}),
        (_operation(("path", "case_id"), body=True), {400, 404, 409, 413, 422, 500, 503}),
    ],
    ids=["nothing-to-get-wrong", "a-path", "a-body", "an-agent", "a-write-to-a-thing"],
)
def test_the_error_answers_of_an_operation_follow_from_its_shape(
    operation: dict[str, object], statuses: set[int]
) -> None:
    assert errors_of(operation) == statuses
