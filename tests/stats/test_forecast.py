"""stats publishes, for each step of each procedure, what a case there can expect, in the figures bucket
tracking reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import pytest
from asgi_lifespan import LifespanManager

from services.stats.app import create_app as create_stats
from shared.bus import FIGURES_BUCKET
from shared.events import EventData
from tests.conftest import Env, stats_settings
from tests.stats.test_domain import exact_quantile
from tests.stats.test_figures import DAY, Case, publish, settled
from tests.waiting import eventually

MIN_CASES = 10


def recent_history(count: int) -> tuple[list[EventData], list[float]]:
    """`count` permits decided in the last weeks; returns the events and each case's days from review to
    its decision."""
    events: list[EventData] = []
    remaining: list[float] = []
    start = datetime.now(UTC) - 50 * DAY
    for i in range(count):
        case = Case(start + i * timedelta(hours=7))
        decided = (12 + 2 * i) * DAY
        events += case.events(
            (DAY, "completeness-check", None, False),
            (3 * DAY, "review", None, False),
            (decided, "accepted", "accepted", False),
        )
        remaining.append((decided - 3 * DAY) / DAY)
    return events, remaining


async def forecast_of(env: Env, procedure: str) -> dict[str, Any]:
    nc = await nats.connect(env.nats_url)
    try:
        kv = await nc.jetstream().key_value(FIGURES_BUCKET)
        entry = await kv.get(f"forecast.{procedure}")
        forecast: dict[str, Any] = json.loads(entry.value or b"{}")
        return forecast
    finally:
        await nc.close()


async def test_a_case_in_review_can_expect_what_recent_cases_in_review_took(env: Env) -> None:
    settings = stats_settings(env, forecast_seconds=0.3, forecast_min_cases=MIN_CASES)
    async with LifespanManager(create_stats(settings)):
        nc = await nats.connect(env.nats_url)
        try:
            events, remaining = recent_history(MIN_CASES + 2)
            await settled(env, (await publish(nc.jetstream(), events))[-1])
        finally:
            await nc.close()
        forecast = await eventually(
            lambda: forecast_of(env, "permis-construire"),
            until=lambda f: f.get("steps", {}).get("review", {}).get("n") == len(remaining),
        )
    review = forecast["steps"]["review"]
    assert forecast["backlog_factor"] == 1.0  # nothing open now
    assert review["p50_days"] == pytest.approx(exact_quantile(remaining, 0.5), rel=0.01)
    assert review["p90_days"] == pytest.approx(exact_quantile(remaining, 0.9), rel=0.01)
    assert review["usual_days"] is not None  # time spent in review itself, measured
    # A step no case went through yet has no figure rather than a made-up one.
    assert forecast["steps"]["documents-requested"]["p50_days"] is None
    assert forecast["steps"]["documents-requested"]["n"] == 0


async def test_too_few_cases_give_no_forecast(env: Env) -> None:
    settings = stats_settings(env, forecast_seconds=0.3, forecast_min_cases=MIN_CASES)
    async with LifespanManager(create_stats(settings)):
        nc = await nats.connect(env.nats_url)
        try:
            events, _ = recent_history(3)
            await settled(env, (await publish(nc.jetstream(), events))[-1])
        finally:
            await nc.close()
        forecast = await eventually(
            lambda: forecast_of(env, "permis-construire"),
            until=lambda f: f.get("steps", {}).get("review", {}).get("n") == 3,
        )
    assert forecast["steps"]["review"]["p50_days"] is None
    assert forecast["min_cases"] == MIN_CASES
