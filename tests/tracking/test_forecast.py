"""The tracking page says when a case will likely be decided, from the figures stats publishes in the
figures bucket, and says so plainly when there are none."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import httpx
import nats

from shared.bus import figures_bucket
from shared.procedures import CITY_TIMEZONE
from tests.builders import make_case
from tests.conftest import Env


async def publish_forecast(env: Env, procedure: str, steps: dict[str, Any]) -> None:
    """What stats publishes (services/stats/forecast.py)."""
    nc = await nats.connect(env.nats_url)
    try:
        kv = await figures_bucket(nc.jetstream())
        document = {
            "procedure": procedure,
            "window_months": 6,
            "backlog_factor": 1.2,
            "min_cases": 10,
            "steps": steps,
        }
        await kv.put(f"forecast.{procedure}", json.dumps(document).encode())
    finally:
        await nc.close()


async def test_a_case_shows_the_likely_decision_dates_of_similar_recent_cases(
    intake: httpx.AsyncClient, tracking: httpx.AsyncClient, env: Env
) -> None:
    await publish_forecast(
        env,
        "permis-construire",
        {
            "received": {"n": 42, "p50_days": 30.4, "p90_days": 51.2, "usual_days": 2.5, "usual_n": 42},
            "completeness-check": {"n": 42, "p50_days": 28, "p90_days": 47, "usual_days": 4.5, "usual_n": 40},
        },
    )
    case = (await intake.post("/v1/cases", json=make_case("permis-construire"))).json()
    view = (await tracking.get(f"/v1/track/{case['tracking_code']}", params={"lang": "en"})).json()
    submitted = datetime.fromisoformat(case["submitted_at"]).astimezone(CITY_TIMEZONE).date()
    forecast = view["forecast"]
    assert forecast["available"] is True and forecast["based_on"] == 42
    assert forecast["likely_from"] == (submitted + timedelta(days=30)).isoformat()
    assert forecast["likely_to"] == (submitted + timedelta(days=51)).isoformat()
    assert "42 similar cases decided in the last 6 months" in forecast["explanation"]
    assert "×1.2" in forecast["explanation"]
    steps = {s["step"]: s for s in view["steps"]}
    assert (steps["completeness-check"]["expected_days"], steps["completeness-check"]["measured"]) == (
        4.5,
        True,
    )
    assert steps["review"]["measured"] is False  # no measured figure: the procedure's own announcement
    french = (await tracking.get(f"/v1/track/{case['tracking_code']}", params={"lang": "fr"})).json()
    assert "42 dossiers semblables" in french["forecast"]["explanation"]


async def test_without_enough_similar_cases_the_page_says_so(
    intake: httpx.AsyncClient, tracking: httpx.AsyncClient, env: Env
) -> None:
    case = (await intake.post("/v1/cases", json=make_case("declaration-prealable"))).json()
    nothing = (await tracking.get(f"/v1/track/{case['tracking_code']}", params={"lang": "en"})).json()[
        "forecast"
    ]
    assert nothing == {
        "available": False,
        "likely_from": None,
        "likely_to": None,
        "based_on": None,
        "explanation": "No forecast is available at the moment.",
    }
    await publish_forecast(
        env,
        "signalement-voirie",
        {"new": {"n": 3, "p50_days": None, "p90_days": None, "usual_days": None}},
    )
    report = (await intake.post("/v1/cases", json=make_case("signalement-voirie"))).json()
    few = (await tracking.get(f"/v1/track/{report['tracking_code']}", params={"lang": "en"})).json()[
        "forecast"
    ]
    assert few["available"] is False
    assert (
        few["explanation"]
        == "Too few similar cases were decided recently to forecast a date (3, at least 10 are needed)."
    )
