"""Submitting a case: every procedure accepts a valid form, and the answer is what a citizen needs."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from devtools.demo import VALID_DATA
from shared import tracking_code
from tests.builders import make_case
from tests.conftest import Env


@pytest.mark.parametrize("procedure", sorted(VALID_DATA))
async def test_each_procedure_accepts_a_valid_submission(intake: httpx.AsyncClient, procedure: str) -> None:
    answer = await intake.post("/v1/cases", json=make_case(procedure))
    assert answer.status_code == 201, answer.text
    case = answer.json()
    tracking_code.normalize(case["tracking_code"])  # well formed, check symbol right
    assert case["procedure"] == procedure and case["version"] == 1


async def test_the_catalogue_is_listed_in_the_requested_language(intake: httpx.AsyncClient) -> None:
    english = (await intake.get("/v1/procedures", headers={"Accept-Language": "en"})).json()
    french = (await intake.get("/v1/procedures?lang=fr")).json()
    assert len(english) == len(french) == len(VALID_DATA)
    assert {p["title"] for p in english}.isdisjoint({p["title"] for p in french})
    permit = (await intake.get("/v1/procedures/permis-construire?lang=en")).json()
    assert permit["legal_deadline"] == {
        "months": 2,
        "days": 0,
        "silence": "acceptance",
        "clock_stops_when_waiting_for_citizen": True,
    }
    assert permit["steps"][0]["label"] == "Application received"
    assert {f["name"] for f in permit["fields"]} >= set(VALID_DATA["permis-construire"])


async def test_a_building_permit_is_due_two_months_after_submission(intake: httpx.AsyncClient) -> None:
    case = (await intake.post("/v1/cases", json=make_case())).json()
    submitted, due = case["submitted_at"][:10], case["legal_deadline"]
    assert (int(due[:4]) * 12 + int(due[5:7])) - (int(submitted[:4]) * 12 + int(submitted[5:7])) == 2


async def test_an_agent_at_the_counter_files_for_a_citizen_by_phone_only(intake: httpx.AsyncClient) -> None:
    body = make_case(
        "acte-naissance", channel="counter", applicant={"email": None, "phone": "+33 4 72 10 30 30"}
    )
    assert (await intake.post("/v1/cases", json=body)).status_code == 201


async def test_personal_data_stays_in_intake(intake: httpx.AsyncClient, env: Env) -> None:
    case = (await intake.post("/v1/cases", json=make_case())).json()
    conn = await asyncpg.connect(env.database_url)
    try:
        applicant = await conn.fetchrow(
            "SELECT * FROM intake.applicants WHERE case_id = $1", __import__("uuid").UUID(case["case_id"])
        )
        envelope = await conn.fetchval("SELECT envelope::text FROM intake.events")
    finally:
        await conn.close()
    assert applicant["email"] == "camille.martin@example.org"
    assert applicant["phone"] == "+33612345678"  # normalized to E.164
    assert "Camille" not in envelope and "example.org" not in envelope and "12 rue des Lilas" not in envelope
    assert '"district": "est"' in envelope  # a public fact
