"""Before reporting a problem, anyone may ask which open reports of the same kind are within 50 m
(`GET /v1/reports/nearby`), by a point or an address: a report 30 m away is there, one 80 m away, one of
another kind and one the city closed are not, and nothing shows where exactly a report is, nor what its
reporter wrote. Bad questions get a 422 that says what to fix, in the visitor's language."""

from __future__ import annotations

import json
from typing import Any

import httpx

from shared.settings import DEVELOPMENT_INTERNAL_TOKEN
from tests.conftest import Env, Tokens
from tests.reports.places import DESCRIPTION, HERE, REPORT, at, north_of, report
from tests.waiting import eventually, query

INTERNAL = {"Authorization": f"Bearer {DEVELOPMENT_INTERNAL_TOKEN}"}


async def _nearby(intake: httpx.AsyncClient, **params: Any) -> httpx.Response:
    return await intake.get("/v1/reports/nearby", params={"procedure": REPORT, **params})


async def _closed(workflow: httpx.AsyncClient, tokens: Tokens, env: Env, case: dict[str, Any]) -> None:
    """The city passes the report on to the body in charge (a final step), and intake knows it."""
    agent, url = tokens("agent", "voirie"), f"/v1/cases/{case['case_id']}"
    seen = await eventually(lambda: workflow.get(url, headers=agent), until=lambda r: r.status_code == 200)
    moved = await workflow.post(
        f"{url}/actions",
        headers=agent,
        json={"action": "transfer", "expected_version": seen.json()["version"]},
    )
    assert moved.status_code == 200, moved.text
    sql = "SELECT 1 FROM intake.steps WHERE case_id = $1::uuid AND outcome IS NOT NULL"
    await eventually(lambda: query(env.database_url, sql, case["case_id"]), until=bool)


async def test_an_open_report_30_m_away_is_shown_not_one_80_m_away_of_another_kind_or_closed(
    intake: httpx.AsyncClient, workflow: httpx.AsyncClient, tokens: Tokens, env: Env
) -> None:
    near = await report(intake, north_of(HERE, 30))
    await report(intake, north_of(HERE, 80))
    await report(intake, north_of(HERE, 10), category="graffiti")
    closed = await report(intake, north_of(HERE, 20))
    await _closed(workflow, tokens, env, closed)

    answer = await _nearby(intake, category="eclairage", lang="en", **at(HERE))
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert (found["procedure"], found["category"], found["radius_m"]) == (REPORT, "eclairage", 50)
    [shown] = found["reports"]
    assert shown["case_id"] == near["case_id"]
    assert shown["distance_m"] == 30 and shown["district"] == "centre"
    assert (shown["category_label"], shown["state_label"]) == ("Street lighting", "Report received")
    assert shown["url"].endswith(f"/signalements/{near['case_id']}?lang=en")

    graffiti = (await _nearby(intake, category="graffiti", lang="fr", **at(HERE))).json()["reports"]
    assert [r["category_label"] for r in graffiti] == ["Tag ou affichage sauvage"]
    assert [r["state_label"] for r in graffiti] == ["Signalement reçu"]


async def test_an_address_is_asked_about_as_its_point(intake: httpx.AsyncClient) -> None:
    here = await report(intake)
    answer = await _nearby(intake, category="eclairage", address="3 place du Marché")
    assert answer.status_code == 200, answer.text
    assert [(r["case_id"], r["distance_m"]) for r in answer.json()["reports"]] == [(here["case_id"], 0)]


async def test_the_answer_says_nothing_of_where_exactly_a_report_is_or_what_its_reporter_wrote(
    intake: httpx.AsyncClient,
) -> None:
    place = north_of(HERE, 23)
    await report(intake, place, description=DESCRIPTION)
    await report(intake, location={"address": "3 place du Marché"}, description=DESCRIPTION)
    text = (await _nearby(intake, category="eclairage", **at(HERE))).text
    assert len(json.loads(text)["reports"]) == 2
    for secret in (
        f"{place.latitude:.5f}"[:-1],
        f"{place.longitude:.5f}"[:-1],
        f"{HERE.latitude:.4f}",
        "Marché",
        "lampadaire",
        "Camille",
        "example.org",
        "cell",
        "tracking_code",
    ):
        assert secret not in text, secret
    assert '"distance_m":20' in text.replace(" ", "")  # 23 m, rounded to 10 m


async def test_bad_questions_are_answered_in_the_visitors_language(intake: httpx.AsyncClient) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"category": "eclairage"}, "latitude", "Give a latitude and a longitude, or an address."),
        ({"category": "eclairage", "latitude": "45.7"}, "longitude", "or an address"),
        ({"category": "lampadaire", **at(HERE)}, "category", "Possible values: eclairage, nid-de-poule"),
        ({"category": "eclairage", "latitude": "nord", "longitude": "4.8"}, "latitude", "between -90 and 90"),
        ({"category": "eclairage", "address": "1 rue qui n'existe pas"}, "address", "We cannot find"),
        ({"category": "eclairage", "latitude": 48.8566, "longitude": 2.3522}, "latitude", "not in the city"),
        ({"category": "eclairage", "procedure": "permis-construire"}, "procedure", "signalement-voirie"),
    ]
    for params, field, words in cases:
        answer = await _nearby(intake, lang="en", **params)
        assert answer.status_code == 422, (params, answer.text)
        errors = {e["field"]: e["message"] for e in answer.json()["errors"]}
        assert words in errors[field], (params, errors)
    french = await _nearby(intake, category="eclairage", lang="fr")
    assert french.json()["errors"] == [
        {"field": "latitude", "message": "Donnez une latitude et une longitude, ou une adresse."}
    ]
    missing = await intake.get("/v1/reports/nearby", params={"lang": "en"})
    assert missing.status_code == 422
    assert {e["field"] for e in missing.json()["errors"]} == {"procedure", "category"}


async def test_workflow_asks_intake_for_the_reports_near_a_case_but_itself(
    intake: httpx.AsyncClient,
) -> None:
    case = await report(intake)
    other = await report(intake, north_of(HERE, 40))
    url = f"/internal/v1/cases/{case['case_id']}/nearby"
    assert (await intake.get(url)).status_code == 401
    answer = await intake.get(url, headers=INTERNAL, params={"lang": "en"})
    assert answer.status_code == 200, answer.text
    assert [(r["case_id"], r["distance_m"]) for r in answer.json()["reports"]] == [(other["case_id"], 40)]
    unknown = await intake.get(
        "/internal/v1/cases/00000000-0000-4000-8000-000000000000/nearby", headers=INTERNAL
    )
    assert unknown.status_code == 404
