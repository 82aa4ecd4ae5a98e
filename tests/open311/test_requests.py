"""Anyone reads the street reports through Open311: a report posted by a 311 app shows as an open request
with its real state's label, follows the agents' moves, is closed only once it has an outcome; filters and
the spec's default window apply; no personal data is ever in a GET."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import h3
import httpx

from tests.conftest import Env, Tokens
from tests.open311.conftest import VALIDATOR_DATETIME, errors_of, post_report, validate
from tests.waiting import eventually, query

AGENT = ("agent", "voirie", "proprete", "police-municipale")
REQUESTS = "/open311/v2/requests.json"


async def _report(tracking: httpx.AsyncClient, **fields: str | None) -> str:
    answer = await post_report(tracking, **fields)
    assert answer.status_code == 200, answer.text
    request_id: str = answer.json()[0]["service_request_id"]
    return request_id


async def _requests(tracking: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    answer = await tracking.get(REQUESTS, params=params)
    assert answer.status_code == 200, answer.text
    body: list[dict[str, Any]] = answer.json()
    validate("requests", body)
    return body


async def _seen(tracking: httpx.AsyncClient, request_id: str, notes: str | None = None) -> dict[str, Any]:
    """The request once tracking folded it (with these `status_notes`, if given)."""
    found = await eventually(
        lambda: _requests(tracking, service_request_id=request_id),
        until=lambda rs: bool(rs) and (notes is None or rs[0]["status_notes"] == notes),
        timeout=10,
    )
    assert found, f"request {request_id} never showed"
    assert notes is None or found[0]["status_notes"] == notes, found
    return found[0]


async def _act(
    workflow: httpx.AsyncClient, tokens: Tokens, case_id: str, *actions: str, **extra: Any
) -> None:
    agent = tokens(*AGENT)
    opened = await eventually(
        lambda: workflow.get(f"/v1/cases/{case_id}", headers=agent), until=lambda r: r.status_code == 200
    )
    version = opened.json()["version"]
    for action in actions:
        answer = await workflow.post(
            f"/v1/cases/{case_id}/actions",
            headers=agent,
            json={"action": action, "expected_version": version, **extra},
        )
        assert answer.status_code == 200, answer.text
        version = answer.json()["version"]


async def test_a_posted_report_is_open_with_its_state_and_closes_only_with_an_outcome(
    tracking: httpx.AsyncClient, workflow: httpx.AsyncClient, tokens: Tokens, env: Env
) -> None:
    request_id = await _report(tracking)
    request = await _seen(tracking, request_id)
    assert request["status"] == "open" and request["status_notes"] == "Signalement reçu"
    assert (request["service_code"], request["service_name"]) == ("eclairage", "Éclairage public")
    assert request["agency_responsible"] == "voirie"
    for name in ("requested_datetime", "updated_datetime"):
        assert VALIDATOR_DATETIME.match(request[name]), request[name]
    # The place is the centre of the public cell, never the point the address gave.
    [place] = await query(
        env.database_url, "SELECT data->'location' FROM intake.cases WHERE case_id = $1::uuid", request_id
    )
    point = json.loads(place[0])
    assert (request["lat"], request["long"]) == tuple(round(x, 6) for x in h3.cell_to_latlng(point["cell"]))
    assert (request["lat"], request["long"]) != (point["latitude"], point["longitude"])

    await _act(workflow, tokens, request_id, "triage")
    assessed = await _seen(tracking, request_id, "En cours d'examen")
    assert assessed["status"] == "open" and assessed["updated_datetime"] >= request["updated_datetime"]
    await _act(workflow, tokens, request_id, "schedule")
    assert (await _seen(tracking, request_id, "Intervention programmée"))["status"] == "open"
    await _act(workflow, tokens, request_id, "resolve")
    done = await _seen(tracking, request_id, "Intervention faite (service fait)")
    assert done["status"] == "closed" and "expected_datetime" not in done
    english = (await tracking.get(f"/open311/v2/requests/{request_id}.json?lang=en")).json()
    validate("requests", english)
    assert english[0]["status_notes"] == "Work done by the city"


async def test_a_duplicate_is_closed_and_names_the_original(
    tracking: httpx.AsyncClient, workflow: httpx.AsyncClient, tokens: Tokens
) -> None:
    original = await _report(tracking)
    again = await _report(tracking)
    await _act(workflow, tokens, original, "triage")
    await _act(workflow, tokens, again, "mark-duplicate", duplicate_of=original)
    duplicate = await _seen(tracking, again, f"Déjà signalé : même problème que la demande {original}.")
    assert duplicate["status"] == "closed"


async def test_filters_and_the_default_window(
    tracking: httpx.AsyncClient, workflow: httpx.AsyncClient, tokens: Tokens, env: Env
) -> None:
    lighting = await _report(tracking)
    rubbish = await _report(tracking, service_code="depot-sauvage")
    noise = await _report(tracking, service_code="vandalisme")
    await _act(workflow, tokens, noise, "triage", "fix-at-once")
    await _seen(tracking, noise, "Intervention faite (service fait)")

    def ids(requests: list[dict[str, Any]]) -> set[str]:
        return {r["service_request_id"] for r in requests}

    assert ids(await _requests(tracking)) == {lighting, rubbish, noise}
    # A kind of report that could point at a person (`sensitive`: night-time noise) is taken, never listed.
    hidden = await _report(tracking, service_code="bruit-nocturne")
    folded = "SELECT facts FROM tracking.cases WHERE case_id = $1::uuid"
    rows = await eventually(lambda: query(env.database_url, folded, hidden), until=lambda rows: bool(rows))
    assert rows and "cell" not in rows[0]["facts"]
    assert await _requests(tracking, service_request_id=hidden) == []
    assert ids(await _requests(tracking)) == {lighting, rubbish, noise}
    assert ids(await _requests(tracking, service_code="depot-sauvage")) == {rubbish}
    assert ids(await _requests(tracking, service_code="eclairage,depot-sauvage")) == {lighting, rubbish}
    assert ids(await _requests(tracking, status="closed")) == {noise}
    assert ids(await _requests(tracking, status="open")) == {lighting, rubbish}
    assert ids(await _requests(tracking, status="open,closed")) == {lighting, rubbish, noise}
    # The ids override every other filter (the spec).
    assert ids(await _requests(tracking, service_request_id=f"{lighting},{noise}", status="open")) == {
        lighting,
        noise,
    }
    newest = await _requests(tracking)
    assert [r["requested_datetime"] for r in newest] == sorted(
        (r["requested_datetime"] for r in newest), reverse=True
    )

    tomorrow = datetime.now(UTC) + timedelta(days=1)
    assert await _requests(tracking, start_date=tomorrow.isoformat()) == []
    # A report of 100 days ago is outside the default window, inside one that holds it.
    long_ago = datetime.now(UTC) - timedelta(days=100)
    await query(
        env.database_url,
        "UPDATE tracking.cases SET submitted_at = $2 WHERE case_id = $1::uuid",
        rubbish,
        long_ago,
    )
    assert ids(await _requests(tracking)) == {lighting, noise}
    window = {
        "start_date": (long_ago - timedelta(days=1)).isoformat(),
        "end_date": (long_ago + timedelta(days=1)).isoformat(),
    }
    assert ids(await _requests(tracking, **window)) == {rubbish}
    # The same window, an offset's `+` sent unencoded (a space once decoded).
    spaced = (long_ago - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00").replace("+", " ")
    assert ids(await _requests(tracking, start_date=spaced, end_date=window["end_date"])) == {rubbish}
    # A window wider than the spec's 90 days is served too, newest first, at most 1000.
    since = (long_ago - timedelta(days=1)).isoformat()
    assert [r["service_request_id"] for r in await _requests(tracking, start_date=since)][-1] == rubbish


async def test_bad_filters_are_400s_and_an_unknown_service_a_404(tracking: httpx.AsyncClient) -> None:
    [no_zone] = errors_of(await tracking.get(REQUESTS, params={"start_date": "2025-01-01T00:00:00"}), 400)
    assert no_zone.startswith("start_date : une date et une heure ISO 8601 avec le fuseau horaire")
    [not_a_day] = errors_of(await tracking.get(REQUESTS, params={"end_date": "2025-02-30T00:00:00Z"}), 400)
    assert not_a_day.startswith("end_date : une date et une heure ISO 8601")
    errors_of(await tracking.get(REQUESTS, params={"end_date": "yesterday"}), 400)
    [fixed] = errors_of(await tracking.get(REQUESTS, params={"status": "fixed", "lang": "en"}), 400)
    assert fixed == "status is open or closed (or both, separated by a comma)."
    errors_of(await tracking.get(REQUESTS, params={"service_request_id": "not-an-id"}), 400)
    errors_of(await tracking.get(REQUESTS, params={"service_code": "fontaine"}), 404)
    [unknown] = errors_of(
        await tracking.get("/open311/v2/requests/5b0a0c5e-3f0e-4a8e-9a55-3c0f3b1e2d4a.json"), 404
    )
    assert "5b0a0c5e" in unknown
    errors_of(await tracking.get("/open311/v2/requests/not-an-id.json"), 404)
    errors_of(await tracking.get("/open311/v2/requests.csv"), 400)
    errors_of(await tracking.get(REQUESTS, params={"status": "x" * 50_000}), 400)


async def test_only_street_reports_are_served(intake: httpx.AsyncClient, tracking: httpx.AsyncClient) -> None:
    from tests.builders import make_case

    permit = (await intake.post("/v1/cases", json=make_case("permis-construire"))).json()
    report = await _report(tracking)
    await _seen(tracking, report)
    assert await _requests(tracking, service_request_id=f"{permit['case_id']},{report}") != []
    assert [
        r["service_request_id"] for r in await _requests(tracking, service_request_id=permit["case_id"])
    ] == []
    errors_of(await tracking.get(f"/open311/v2/requests/{permit['case_id']}.json"), 404)
