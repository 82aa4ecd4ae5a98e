"""The Open311 door's fixtures: intake with a 311 app's key, tracking reaching that intake in-process (it
forwards posted reports), a form as a 311 app posts it, and the Open311 project's JSON Schemas to check
every JSON answer against."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from devtools.demo import APPLICANT
from services.intake.app import create_app as create_intake
from services.tracking.app import create_app as create_tracking
from tests.conftest import Env, _client, intake_settings, tracking_settings

API_KEY = "test-311-app-key-0123456789"
SCHEMAS = Path(__file__).parent / "schemas"
# open311-validator-py's pattern for every datetime (test311.py): seconds, and `Z` or no zone at all; the
# spec asks for a zone, so ours always end with `Z`.
VALIDATOR_DATETIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z$")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")

FIRST_NAME, LAST_NAME = APPLICANT["name"].split(" ", 1)
EMAIL, PHONE = APPLICANT["email"], APPLICANT["phone"]
ADDRESS = "3 place du Marché"
DESCRIPTION = "Le lampadaire devant le numéro 3 ne s'allume plus depuis une semaine."


@pytest.fixture
async def intake(env: Env) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(create_intake(intake_settings(env, open311_api_keys=API_KEY))):
        yield client


@pytest.fixture
async def tracking(env: Env, intake: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """tracking, whose posted reports go on to the in-process intake."""
    app = create_tracking(tracking_settings(env))
    async for client in _client(app):
        app.state.http = httpx.AsyncClient(transport=intake._transport, base_url="http://intake")
        yield client
        await app.state.http.aclose()


def report(**fields: str | None) -> dict[str, str]:
    """A 311 app's report, form fields as the spec names them; `None` leaves one out."""
    form: dict[str, str | None] = {
        "api_key": API_KEY,
        "service_code": "eclairage",
        "address_string": ADDRESS,
        "description": DESCRIPTION,
        "first_name": FIRST_NAME,
        "last_name": LAST_NAME,
        "email": EMAIL,
        "phone": PHONE,
        "device_id": "phone-42",
        **fields,
    }
    return {k: v for k, v in form.items() if v is not None}


async def post_report(client: httpx.AsyncClient, **fields: str | None) -> httpx.Response:
    """`report(**fields)` posted to `requests.json` (`requests.xml` with `fmt="xml"`)."""
    fmt = fields.pop("fmt", None) or "json"
    return await client.post(f"/open311/v2/requests.{fmt}", data=report(**fields))


# --- The Open311 project's schemas ----------------------------------------------------------------


def _registry() -> Registry:
    resources = [
        (path.name, Resource.from_contents(json.loads(path.read_text(encoding="utf-8")), DRAFT4))
        for path in SCHEMAS.glob("*.json")
    ]
    return Registry().with_resources(resources)


_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("date-time")  # type: ignore[untyped-decorator]
def _datetime(value: object) -> bool:
    return not isinstance(value, str) or bool(RFC3339.match(value))


@_FORMATS.checks("uri")  # type: ignore[untyped-decorator]
def _uri(value: object) -> bool:
    return not isinstance(value, str) or bool(urlsplit(value).scheme and urlsplit(value).netloc)


def validate(kind: str, body: Any) -> None:
    """`body` against `schemas/<kind>.json` (services, service-definition, requests...), formats checked."""
    schema = json.loads((SCHEMAS / f"{kind}.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft4Validator(
        {**schema, "id": f"{kind}.json"}, registry=_registry(), format_checker=_FORMATS
    )
    validator.validate(body)


def xml_of(answer: httpx.Response, status: int = 200) -> ET.Element:
    """An XML answer's document, after checking its status and type (our own answer: no untrusted XML)."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/xml")
    assert answer.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return ET.fromstring(answer.content)  # noqa: S314


def errors_of(answer: httpx.Response, status: int) -> list[str]:
    """The descriptions of an Open311 error answer, after checking its shape."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert isinstance(body, list) and body, body
    assert all(set(e) == {"code", "description"} and e["code"] == status for e in body), body
    return [e["description"] for e in body]
