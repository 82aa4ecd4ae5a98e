"""What a submission publishes: the public fields' values, and of a location only its district; never the
address or the point."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml

from services.intake.app import create_app
from tests.builders import make_case
from tests.conftest import Env, _client, intake_settings

SHIPPED = Path(__file__).resolve().parents[2] / "procedures"
PLACE = "signalement-voirie"


def _report_published_by_district(root: Path) -> Path:
    """The shipped catalogue, with the street report's location published as its district, chosen by the
    citizen: version 1 without the polygons of version 2 (which find the district from the point)."""
    shutil.copytree(SHIPPED, root, dirs_exist_ok=True)
    (root / PLACE / "v2.yaml").unlink()
    (root / PLACE / "districts.geojson").unlink()
    path = root / PLACE / "v1.yaml"
    definition = yaml.safe_load(path.read_text(encoding="utf-8"))
    fields: list[dict[str, Any]] = definition["fields"]
    districts = next(f for f in fields if f["name"] == "district")
    definition["fields"] = [f for f in fields if f["name"] != "district"]
    location = next(f for f in definition["fields"] if f["name"] == "location")
    location.update(public="district", choices=districts["choices"])
    path.write_text(yaml.safe_dump(definition, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return root


@pytest.fixture
async def intake_by_district(env: Env, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = intake_settings(env, procedures_dir=_report_published_by_district(tmp_path / "procedures"))
    async for client in _client(create_app(settings)):
        yield client


def _report(location: dict[str, Any]) -> dict[str, Any]:
    return make_case(PLACE, location=location)


async def _published_facts(env: Env) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(env.database_url)
    try:
        rows = await conn.fetch("SELECT envelope FROM intake.events WHERE type LIKE '%submitted%'")
    finally:
        await conn.close()
    return [json.loads(row["envelope"])["data"]["facts"] for row in rows]


async def test_a_location_published_by_district_publishes_only_the_district(
    intake_by_district: httpx.AsyncClient, env: Env
) -> None:
    for location in (
        {"address": "12 rue des Lilas", "district": "nord"},
        {"latitude": 48.8566, "longitude": 2.3522, "district": "nord"},
    ):
        answer = await intake_by_district.post("/v1/cases", json=_report(location))
        assert answer.status_code == 201, answer.text
    published = await _published_facts(env)
    assert [facts["location"] for facts in published] == ["nord", "nord"]
    text = json.dumps(published)
    assert "Lilas" not in text
    assert "48.8566" not in text


async def test_a_location_published_by_district_needs_one_of_the_districts(
    intake_by_district: httpx.AsyncClient, env: Env
) -> None:
    for location in (
        {"address": "12 rue des Lilas"},
        {"address": "12 rue des Lilas", "district": "ailleurs"},
    ):
        answer = await intake_by_district.post("/v1/cases?lang=en", json=_report(location))
        assert answer.status_code == 422, answer.text
        errors = {e["field"]: e["message"] for e in answer.json()["errors"]}
        assert "centre, nord, sud, est, ouest" in errors["data.location"]
    assert await _published_facts(env) == []


async def test_the_form_offers_the_districts_of_a_location(intake_by_district: httpx.AsyncClient) -> None:
    procedure = (await intake_by_district.get(f"/v1/procedures/{PLACE}?lang=en")).json()
    location = next(f for f in procedure["fields"] if f["name"] == "location")
    assert location["type"] == "location"
    assert [c["value"] for c in location["choices"]] == ["centre", "nord", "sud", "est", "ouest"]
