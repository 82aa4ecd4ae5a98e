"""A 311 app posts a report as the spec says (form-encoded, `attribute[...]` keys): it becomes a case
through the same checks, events and outbox as every submission, answered at once with its id; what is
missing or wrong comes back as Open311 errors saying which parameter and why."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from services.tracking.app import create_app as create_tracking
from tests.conftest import Env, _client, tracking_settings
from tests.open311.conftest import DESCRIPTION, errors_of, post_report, report, xml_of
from tests.waiting import query


async def _submitted(env: Env) -> list[dict[str, Any]]:
    rows = await query(
        env.database_url,
        "SELECT c.case_id, c.channel, c.data, a.name, e.envelope FROM intake.cases c "
        "JOIN intake.applicants a USING (case_id) JOIN intake.events e USING (case_id) "
        "ORDER BY e.recorded_at",
    )
    return [{k: json.loads(v) if k in ("data", "envelope") else v for k, v in r.items()} for r in rows]


async def test_a_posted_report_becomes_a_case_answered_at_once(intake: httpx.AsyncClient, env: Env) -> None:
    answer = await post_report(intake, media_url="https://photos.example.org/lampadaire.jpg")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    [created] = body
    assert set(created) == {"service_request_id", "service_notice", "account_id"}
    assert created["account_id"] is None and "code de suivi" in created["service_notice"]
    [case] = await _submitted(env)
    assert str(case["case_id"]) == created["service_request_id"]
    data = case["data"]
    assert data["category"] == "eclairage" and data["description"] == DESCRIPTION
    assert data["photo_url"] == "https://photos.example.org/lampadaire.jpg"
    assert data["location"]["address"] == "3 place du Marché" and "latitude" in data["location"]
    assert case["name"] == "Camille Martin" and case["channel"] == "web"
    # What goes on the bus is what every submission publishes: the category, district and cell.
    facts = case["envelope"]["data"]["facts"]
    assert set(facts) == {"category", "district", "cell"}


async def test_a_point_is_a_place_too(intake: httpx.AsyncClient, env: Env) -> None:
    answer = await post_report(intake, address_string=None, lat="45.7590", long="4.8550")
    assert answer.status_code == 200, answer.text
    [case] = await _submitted(env)
    assert case["data"]["location"]["district"] == "est"


async def test_attributes_are_sent_as_the_spec_says(intake: httpx.AsyncClient) -> None:
    # The street report has no attribute: one sent is named with the service's (none).
    answer = await intake.post(
        "/open311/v2/requests.json?lang=en", data={**report(), "attribute[colour]": "red"}
    )
    [described] = errors_of(answer, 400)
    assert described == "attribute[colour]: This service has no such attribute; its attributes: -."


async def test_the_xml_answer_names_the_request(intake: httpx.AsyncClient) -> None:
    request = xml_of(await post_report(intake, fmt="xml")).find("request")
    assert request is not None
    uuid.UUID(request.findtext("service_request_id") or "")


@pytest.mark.parametrize("key", [None, "", "not-the-key-of-any-app"])
async def test_without_a_known_api_key_nothing_is_recorded(
    intake: httpx.AsyncClient, env: Env, key: str | None
) -> None:
    [described] = errors_of(await post_report(intake, api_key=key), 403)
    assert "api_key" in described
    assert await _submitted(env) == []


async def test_the_service_code_is_required_and_must_exist(intake: httpx.AsyncClient) -> None:
    [missing] = errors_of(
        await intake.post("/open311/v2/requests.json?lang=en", data=report(service_code=None)), 400
    )
    assert missing == "service_code is required: one of the codes of services.json."
    [unknown] = errors_of(await post_report(intake, service_code="fontaine"), 404)
    assert "fontaine" in unknown


async def test_an_address_the_city_does_not_have_is_a_400_saying_so(
    intake: httpx.AsyncClient, env: Env
) -> None:
    answer = await intake.post(
        "/open311/v2/requests.json",
        data=report(address_string="1 rue inconnue"),
        headers={"Accept-Language": "en"},
    )
    [described] = errors_of(answer, 400)
    assert described.startswith("lat, long, address_string: We cannot find this address in the city")
    outside = await post_report(intake, address_string=None, lat="48.8566", long="2.3522")
    [elsewhere] = errors_of(outside, 400)
    assert "n'est pas dans la ville" in elsewhere
    assert await _submitted(env) == []


async def test_everything_missing_is_said_at_once(intake: httpx.AsyncClient) -> None:
    form = report(
        address_string=None, description=None, first_name=None, last_name=None, email=None, phone=None
    )
    described = errors_of(await intake.post("/open311/v2/requests.json?lang=en", data=form), 400)
    assert described == [
        "lat, long, address_string: Give the place: lat and long (WGS 84), or address_string (number and street).",
        "first_name, last_name: Give the name of the person reporting (first_name, last_name).",
        "email, phone: Give at least an e-mail address or a phone number so that we can keep you informed.",
        "description: This field is required.",
    ]


async def test_wrong_values_are_named_by_their_parameter(intake: httpx.AsyncClient) -> None:
    form = report(
        media_url="http://insecure.example.org/p.jpg", email="not-an-address", lat="north", long="4.8"
    )
    described = errors_of(await intake.post("/open311/v2/requests.json?lang=en", data=form), 400)
    assert [d.split(":", 1)[0] for d in described] == ["lat, long", "media_url"]
    assert described[0].endswith("as decimal numbers (WGS 84), for example lat=45.7597&long=4.8422.")
    form = report(media_url="http://insecure.example.org/p.jpg", email="not-an-address")
    described = errors_of(await intake.post("/open311/v2/requests.json?lang=en", data=form), 400)
    assert [d.split(":", 1)[0] for d in described] == ["media_url", "email"]


async def test_a_json_body_is_not_the_spec_s_form(intake: httpx.AsyncClient) -> None:
    [described] = errors_of(await intake.post("/open311/v2/requests.json?lang=en", json=report()), 400)
    assert "application/x-www-form-urlencoded" in described


async def test_a_retry_with_the_same_idempotency_key_records_one_case(
    intake: httpx.AsyncClient, env: Env
) -> None:
    headers = {"Idempotency-Key": "311-app-retry-1"}
    first = await intake.post("/open311/v2/requests.json", data=report(), headers=headers)
    again = await intake.post("/open311/v2/requests.json", data=report(), headers=headers)
    assert first.status_code == again.status_code == 200, again.text
    assert first.json()[0]["service_request_id"] == again.json()[0]["service_request_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(await _submitted(env)) == 1


async def test_tracking_takes_the_post_on_the_same_path_and_forwards_it(
    tracking: httpx.AsyncClient, env: Env
) -> None:
    answer = await post_report(tracking)
    assert answer.status_code == 200, answer.text
    [case] = await _submitted(env)
    assert answer.json()[0]["service_request_id"] == str(case["case_id"])
    [refused] = errors_of(await post_report(tracking, api_key="wrong-key-of-nobody"), 403)
    assert "api_key" in refused


async def test_intake_down_is_a_503_asking_to_retry(env: Env) -> None:
    app = create_tracking(tracking_settings(env, intake_url="http://127.0.0.1:9"))  # nothing listens there
    async for tracking in _client(app):
        [described] = errors_of(await post_report(tracking), 503)
        assert "intake" in described
