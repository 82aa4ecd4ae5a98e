"""End to end, as in production: intake and tracking each run by uvicorn on their own port, on real NATS and
PostgreSQL; a 311 app posts a form-encoded report to tracking's `requests.json`, which forwards it over
HTTP to intake; the report then shows in tracking's `GET requests.json`, folded from the bus."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.servers import UvicornProcess
from tests.conftest import Env
from tests.open311.conftest import API_KEY, EMAIL, LAST_NAME, report, validate
from tests.waiting import eventually


@pytest.fixture
def served(env: Env, tmp_path: Path) -> Iterator[dict[str, str]]:
    intake = UvicornProcess("services.intake.app", env={}, log=tmp_path / "intake.log")
    tracking = UvicornProcess("services.tracking.app", env={}, log=tmp_path / "tracking.log")
    variables = {**env.variables(), "OPEN311_API_KEYS": f"another-311-app-key-000,{API_KEY}"}
    intake.env = variables
    tracking.env = {**variables, "INTAKE_URL": intake.url}
    try:
        intake.start()  # one after the other: each applies its migrations
        tracking.start()
        yield {"intake": intake.url, "tracking": tracking.url}
    finally:
        tracking.stop()
        intake.stop()


async def test_a_311_app_reports_through_tracking_and_reads_the_request_back(served: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=30) as intake:
        validate("services", (await intake.get(f"{served['intake']}/open311/v2/services.json")).json())
    async with httpx.AsyncClient(base_url=served["tracking"], timeout=30) as app:
        posted = await app.post("/open311/v2/requests.json", data=report(service_code="nid-de-poule"))
        assert posted.status_code == 200, posted.text
        assert posted.headers["content-type"].startswith("application/json")
        request_id = posted.json()[0]["service_request_id"]
        seen = await eventually(
            lambda: app.get("/open311/v2/requests.json", params={"service_request_id": request_id}),
            until=lambda r: r.status_code == 200 and bool(r.json()),
            timeout=15,
        )
        [request] = seen.json()
        validate("requests", [request])
        assert (request["status"], request["status_notes"]) == ("open", "Signalement reçu")
        assert request["service_code"] == "nid-de-poule"
        assert LAST_NAME not in seen.text and EMAIL not in seen.text
        refused = await app.post("/open311/v2/requests.json", data=report(api_key="not-a-key-of-any-app"))
        assert refused.status_code == 403 and refused.json()[0]["code"] == 403
