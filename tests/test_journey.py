"""The first journey, end to end through HTTP: list procedures, submit one, follow it by its code."""

from __future__ import annotations

import httpx
import pytest

from tests.builders import make_case


async def test_a_citizen_submits_and_follows_a_building_permit(
    intake: httpx.AsyncClient, tracking: httpx.AsyncClient
) -> None:
    listed = (await intake.get("/v1/procedures", params={"lang": "fr"})).json()
    assert "permis-construire" in [p["code"] for p in listed]

    answer = await intake.post("/v1/cases", json=make_case("permis-construire"))
    assert answer.status_code == 201, answer.text
    case = answer.json()
    assert case["status"] == "Dossier reçu"
    assert case["tracking_url"].endswith(f"/suivi/{case['tracking_code']}?lang=fr")

    # Straight after the answer: tracking waits briefly for the projection rather than say 404.
    seen = await tracking.get(f"/v1/track/{case['tracking_code']}", params={"lang": "en"})
    assert seen.status_code == 200, seen.text
    view = seen.json()
    assert view["procedure"]["title"] == "Building permit for a house"
    assert view["status"]["label"] == "Application received"
    assert view["status"]["turn"] == "administration"
    assert [h["step"] for h in view["history"]] == ["received"]
    assert view["clocks"]["legal_deadline"] == case["legal_deadline"]
    assert "Camille" not in seen.text and "example.org" not in seen.text


@pytest.mark.parametrize(
    ("accept", "label"), [("en-GB,en;q=0.9", "Application received"), ("fr-FR", "Dossier reçu")]
)
async def test_the_lookup_speaks_the_readers_language(
    intake: httpx.AsyncClient, tracking: httpx.AsyncClient, accept: str, label: str
) -> None:
    code = (await intake.post("/v1/cases", json=make_case())).json()["tracking_code"]
    typed = code.lower().replace("-", "")
    view = (await tracking.get(f"/v1/track/{typed}", headers={"Accept-Language": accept})).json()
    assert view["status"]["label"] == label
    assert view["tracking_code"] == code
