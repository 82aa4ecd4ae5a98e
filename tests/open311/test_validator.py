"""The checks of open311/open311-validator-py (`test311.py`, XML only), ported: required fields, the enums
(`realtime|batch|blackbox`, `open|closed`, the attribute datatypes) and its datetime pattern. Its one check
left out on purpose: "address is required" (not the spec's rule; we never publish an address)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from services.intake.app import create_app as create_intake
from shared.open311_http import to_xml
from shared.settings import DEFAULT_PROCEDURES_DIR
from tests.conftest import Env, _client, intake_settings
from tests.open311.conftest import API_KEY, VALIDATOR_DATETIME, post_report, xml_of
from tests.waiting import eventually

DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
FILLED = re.compile(".+")
EXTRA_FIELDS = [
    {
        "name": "danger",
        "type": "boolean",
        "required": False,
        "label": {"fr": "Danger", "en": "Danger", "ar": "خطر"},
    },
    {
        "name": "count",
        "type": "integer",
        "required": False,
        "label": {"fr": "Nombre", "en": "How many", "ar": "العدد"},
    },
]


@pytest.fixture
async def intake(env: Env, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """intake whose street report has two more fields, so that its services have attributes."""
    for source in DEFAULT_PROCEDURES_DIR.iterdir():
        if source.is_dir():
            (tmp_path / source.name).mkdir()
            for path in source.iterdir():
                (tmp_path / source.name / path.name).write_bytes(path.read_bytes())
    report = tmp_path / "signalement-voirie" / "v2.yaml"
    definition = yaml.safe_load(report.read_text(encoding="utf-8"))
    definition["fields"] += EXTRA_FIELDS
    report.write_text(yaml.safe_dump(definition, allow_unicode=True), encoding="utf-8")
    settings = intake_settings(env, open311_api_keys=API_KEY, procedures_dir=tmp_path)
    async for client in _client(create_intake(settings)):
        yield client


def _text(element: ET.Element, name: str) -> str:
    return element.findtext(name) or ""


async def test_services(intake: httpx.AsyncClient) -> None:
    services = list(xml_of(await intake.get("/open311/v2/services.xml")).iter("service"))
    assert services
    for s in services:
        assert FILLED.search(_text(s, "service_code")), "service_code is required"
        assert _text(s, "metadata") in ("true", "false"), "metadata must be a boolean string"
        assert _text(s, "type") in ("realtime", "batch", "blackbox"), "type is not a valid type"
        assert FILLED.search(_text(s, "description")), "description is required"


async def test_service_definitions(intake: httpx.AsyncClient) -> None:
    services = list(xml_of(await intake.get("/open311/v2/services.xml")).iter("service"))
    assert {_text(s, "metadata") for s in services} == {"true"}
    for s in services:
        code = _text(s, "service_code")
        definition = xml_of(await intake.get(f"/open311/v2/services/{code}.xml"))
        assert _text(definition, "service_code") == code, "Service codes did not match."
        attributes = list(definition.iter("attribute"))
        assert [_text(a, "code") for a in attributes] == ["danger", "count"]
        for a in attributes:
            assert _text(a, "variable") in ("true", "false"), "variable must be a boolean string"
            assert FILLED.search(_text(a, "code")), "code is required"
            assert _text(a, "datatype") in DATATYPES, "datatype is not a valid type"
            assert _text(a, "required") in ("true", "false"), "required must be a boolean string"
            assert isinstance(float(_text(a, "order")), float), "order is not valid"
        values = {v.findtext("key"): v.findtext("name") for v in attributes[0].iter("value")}
        assert values == {"true": "Oui", "false": "Non"}


async def test_service_requests(intake: httpx.AsyncClient, tracking: httpx.AsyncClient) -> None:
    posted = await post_report(intake, **{"attribute[danger]": "true", "attribute[count]": "2"})
    assert posted.status_code == 200, posted.text
    answer = await eventually(
        lambda: tracking.get("/open311/v2/requests.xml", params={"service_code": "eclairage"}),
        until=lambda r: b"<request>" in r.content,
        timeout=10,
    )
    requests = list(xml_of(answer).iter("request"))
    assert requests
    for r in requests:
        assert FILLED.search(_text(r, "service_request_id")), "service_request_id is required"
        assert _text(r, "status") in ("open", "closed"), "status is not a valid type"
        assert FILLED.search(_text(r, "service_name")), "service_name is required"
        assert FILLED.search(_text(r, "service_code")), "service_code is required"
        assert VALIDATOR_DATETIME.search(_text(r, "requested_datetime")), "requested_datetime is not valid"
        for optional in ("updated_datetime", "expected_datetime"):
            if r.findtext(optional):
                assert VALIDATOR_DATETIME.search(_text(r, optional)), f"{optional} is not a valid datetime"
        for coordinate in ("lat", "long"):
            assert isinstance(float(_text(r, coordinate)), float), f"{coordinate} is not valid"


async def test_an_invalid_attribute_value_is_said_by_the_procedure(intake: httpx.AsyncClient) -> None:
    answer = await post_report(intake, **{"attribute[count]": "two", "lang": None})
    assert answer.status_code == 400
    assert answer.json()[0]["description"].startswith("attribute[count]: ")


def test_text_is_escaped_and_what_xml_cannot_hold_is_replaced() -> None:
    document = to_xml("errors", [{"code": 400, "description": 'a < b & "c" \x01 ok'}])
    parsed = ET.fromstring(document)  # noqa: S314 - our own document
    assert parsed.findtext("error/description") == 'a < b & "c" \ufffd ok'
    assert parsed.findtext("error/code") == "400"
