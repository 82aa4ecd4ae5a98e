"""A street report's place: a point, or an address the city's street list turns into one; its district is
the polygon's that holds it and its public cell goes with it; the category routes it to its service. Only
the district and the cell are published, never the point or the address."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.builders import make_case
from tests.conftest import Env
from tests.waiting import query

REPORT = "signalement-voirie"


async def _submitted(env: Env) -> list[dict[str, Any]]:
    rows = await query(
        env.database_url,
        "SELECT e.envelope, c.data FROM intake.events e JOIN intake.cases c USING (case_id) "
        "WHERE e.type LIKE '%submitted%' ORDER BY e.recorded_at",
    )
    return [{"event": json.loads(r["envelope"])["data"], "data": json.loads(r["data"])} for r in rows]


async def test_an_address_becomes_a_point_in_its_district_and_only_the_district_is_published(
    intake: httpx.AsyncClient, env: Env
) -> None:
    answer = await intake.post("/v1/cases", json=make_case(REPORT, location={"address": "40 rue Gambetta"}))
    assert answer.status_code == 201, answer.text
    [submitted] = await _submitted(env)
    place = submitted["data"]["location"]
    assert place["address"] == "40 rue Gambetta" and place["district"] == "nord"
    assert 45.76 < place["latitude"] < 45.78 and 4.84 < place["longitude"] < 4.845
    facts = submitted["event"]["facts"]
    assert facts == {"category": "eclairage", "district": "nord", "cell": place["cell"]}
    published = json.dumps(submitted["event"])
    assert "Gambetta" not in published and str(place["latitude"]) not in published


async def test_the_category_routes_the_report_to_its_service(intake: httpx.AsyncClient, env: Env) -> None:
    for category in ("bruit-nocturne", "depot-sauvage", "nid-de-poule"):
        answer = await intake.post("/v1/cases", json=make_case(REPORT, category=category))
        assert answer.status_code == 201, answer.text
    services = [s["event"]["service"] for s in await _submitted(env)]
    assert services == ["police-municipale", "proprete", "voirie"]


async def test_the_district_is_the_polygons_whatever_the_citizen_says(
    intake: httpx.AsyncClient, env: Env
) -> None:
    location = {"latitude": 45.7590, "longitude": 4.8550, "district": "ouest"}
    answer = await intake.post("/v1/cases", json=make_case(REPORT, location=location))
    assert answer.status_code == 201, answer.text
    [submitted] = await _submitted(env)
    assert submitted["event"]["facts"]["district"] == "est"


async def test_an_address_the_city_does_not_have_is_explained(intake: httpx.AsyncClient, env: Env) -> None:
    body = make_case(REPORT, location={"address": "1 rue qui n'existe pas"})
    for lang, words in (("fr", "Nous ne trouvons pas cette adresse"), ("en", "We cannot find this address")):
        answer = await intake.post(f"/v1/cases?lang={lang}", json=body)
        assert answer.status_code == 422, answer.text
        errors = {e["field"]: e["message"] for e in answer.json()["errors"]}
        assert words in errors["data.location"]
    assert await _submitted(env) == []


async def test_a_point_outside_the_city_is_explained(intake: httpx.AsyncClient, env: Env) -> None:
    body = make_case(REPORT, location={"latitude": 48.8566, "longitude": 2.3522})
    answer = await intake.post("/v1/cases?lang=en", json=body)
    assert answer.status_code == 422, answer.text
    errors = {e["field"]: e["message"] for e in answer.json()["errors"]}
    assert errors["data.location"].startswith("Location: This place is not in the city") or (
        "This place is not in the city" in errors["data.location"]
    )
    assert await _submitted(env) == []


async def test_a_report_that_could_point_at_a_person_publishes_its_district_only(
    intake: httpx.AsyncClient, env: Env
) -> None:
    """Harassment and night-time noise (`sensitive` in the definition): no grid cell on the bus, and never
    said to be near a place, even to the next person reporting the same thing there."""
    for _ in range(2):
        answer = await intake.post("/v1/cases", json=make_case(REPORT, category="harcelement"))
        assert answer.status_code == 201, answer.text
    first = (await _submitted(env))[0]
    assert first["event"]["facts"] == {"category": "harcelement", "district": "centre"}
    place = first["data"]["location"]
    nearby = await intake.get(
        "/v1/reports/nearby",
        params={
            "procedure": REPORT,
            "category": "harcelement",
            "latitude": place["latitude"],
            "longitude": place["longitude"],
        },
    )
    assert nearby.status_code == 200 and nearby.json()["reports"] == []
