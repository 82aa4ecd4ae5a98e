"""What a GET shows of a report is public by construction: no name, e-mail, phone, address, description,
photo link or exact point, in JSON or XML, in a list or alone; the expected date is stats' forecast."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta

import httpx

from shared.procedures import CITY_TIMEZONE
from tests.conftest import Env
from tests.open311.conftest import ADDRESS, DESCRIPTION, EMAIL, FIRST_NAME, LAST_NAME, post_report, validate
from tests.tracking.test_forecast import publish_forecast
from tests.waiting import eventually, query

PHOTO = "https://photos.example.org/camille-devant-chez-elle.jpg"


async def _posted(tracking: httpx.AsyncClient, **fields: str | None) -> str:
    answer = await post_report(tracking, media_url=PHOTO, **fields)
    assert answer.status_code == 200, answer.text
    request_id: str = answer.json()[0]["service_request_id"]
    await eventually(
        lambda: tracking.get(f"/open311/v2/requests/{request_id}.json"), until=lambda r: r.status_code == 200
    )
    return request_id


async def test_no_personal_data_in_any_get(tracking: httpx.AsyncClient, env: Env) -> None:
    request_id = await _posted(tracking)
    [place] = await query(env.database_url, "SELECT data->'location' FROM intake.cases")
    point = json.loads(place[0])
    secrets = [
        FIRST_NAME,
        LAST_NAME,
        EMAIL,
        "06 12 34 56 78",
        "+33612345678",
        ADDRESS,
        "Marché",
        DESCRIPTION[:30],
        PHOTO,
        "photos.example.org",
        str(point["latitude"]),
        str(point["longitude"]),
        "phone-42",  # the device id
    ]
    answers = [
        await tracking.get(path)
        for path in (
            "/open311/v2/requests.json",
            "/open311/v2/requests.xml",
            f"/open311/v2/requests/{request_id}.json",
            f"/open311/v2/requests/{request_id}.xml",
            f"/open311/v2/requests.json?service_request_id={request_id}&lang=en",
        )
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert request_id in answer.text
        for secret in secrets:
            assert secret not in answer.text, (answer.request.url, secret)
    request = answers[0].json()[0]
    assert not {"address", "address_id", "zipcode", "description", "media_url"} & set(request)


async def test_the_expected_date_is_stats_forecast_while_the_report_is_open(
    tracking: httpx.AsyncClient, env: Env
) -> None:
    await publish_forecast(env, "signalement-voirie", {"new": {"n": 30, "p50_days": 3.2, "p90_days": 9.6}})
    request_id = await _posted(tracking)
    [request] = (await tracking.get(f"/open311/v2/requests/{request_id}.json")).json()
    validate("requests", [request])
    submitted = datetime.fromisoformat(request["requested_datetime"]).astimezone(CITY_TIMEZONE).date()
    expected = datetime.combine(submitted + timedelta(days=10), time(23, 59, 59), CITY_TIMEZONE)
    assert datetime.fromisoformat(request["expected_datetime"]) == expected


async def test_without_a_forecast_no_date_is_promised(tracking: httpx.AsyncClient) -> None:
    request_id = await _posted(tracking)
    [request] = (await tracking.get(f"/open311/v2/requests/{request_id}.json")).json()
    assert "expected_datetime" not in request
