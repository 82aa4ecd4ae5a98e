"""The JSON lookup: typos told apart from unknown codes, and guessing slowed down per client."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from services.tracking.app import create_app
from shared import tracking_code
from tests.builders import make_case
from tests.conftest import Env, _client, tracking_settings
from tests.waiting import eventually, scalar


@pytest.fixture
async def strict_tracking(env: Env) -> AsyncIterator[httpx.AsyncClient]:
    settings = tracking_settings(env, miss_limit="3/minute", unknown_code_grace_seconds=0)
    async for client in _client(create_app(settings)):
        yield client


async def test_a_typo_an_unknown_code_and_a_non_code_are_told_apart(
    strict_tracking: httpx.AsyncClient,
) -> None:
    code = tracking_code.generate()
    typo = code[:-1] + ("A" if code[-1] != "A" else "B")
    mistyped = await strict_tracking.get(f"/v1/track/{typo}?lang=en")
    assert mistyped.status_code == 422 and "mistyped" in mistyped.json()["detail"]
    unknown = await strict_tracking.get(f"/v1/track/{code}?lang=en")
    assert unknown.status_code == 404 and "No case matches" in unknown.json()["detail"]
    nonsense = await strict_tracking.get("/v1/track/hello?lang=fr")
    assert nonsense.status_code == 422 and "n'a pas la forme" in nonsense.json()["detail"]


async def test_bad_lookup_parameters_get_a_422_naming_the_field_in_the_callers_language(
    strict_tracking: httpx.AsyncClient,
) -> None:
    # The lookup reads its parameters in one go (`shared.params`): the same answers as FastAPI's.
    code = tracking_code.generate()
    too_long = await strict_tracking.get(f"/v1/track/{'K' * 65}?lang=en")
    assert too_long.status_code == 422, too_long.text
    assert too_long.json()["errors"] == [{"field": "code", "message": "At most 64 characters are accepted."}]
    for bad in ("0", "1000001", "abc"):
        answer = await strict_tracking.get(f"/v1/track/{code}", params={"min_version": bad, "lang": "fr"})
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        (error,) = answer.json()["errors"]
        assert error["field"] == "min_version" and answer.json()["detail"].startswith(
            "La requête contient des erreurs"
        )
    # What the route does not name is ignored, as everywhere: the code is looked up (and unknown).
    unknown = await strict_tracking.get(f"/v1/track/{code}", params={"page": "2", "min_version": "1"})
    assert unknown.status_code == 404, unknown.text


async def test_guessing_codes_is_slowed_down_with_retry_after(strict_tracking: httpx.AsyncClient) -> None:
    for _ in range(3):
        assert (await strict_tracking.get(f"/v1/track/{tracking_code.generate()}")).status_code == 404
    blocked = await strict_tracking.get(f"/v1/track/{tracking_code.generate()}?lang=en")
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
    assert "Try again in" in blocked.json()["detail"]


async def test_guesses_sent_at_once_get_the_miss_budget_and_then_429(env: Env) -> None:
    """The miss is taken before the lookup waits for a case submitted a moment ago, not after."""
    settings = tracking_settings(
        env, miss_limit="10/hour", lookup_limit="1000/minute", unknown_code_grace_seconds=0.5
    )
    async for client in _client(create_app(settings)):
        answers = await asyncio.gather(
            *[client.get(f"/v1/track/{tracking_code.generate()}") for _ in range(200)]
        )
    assert Counter(a.status_code for a in answers) == {404: 10, 429: 190}
    assert all(int(a.headers["Retry-After"]) >= 1 for a in answers if a.status_code == 429)


async def test_a_code_found_costs_no_miss(
    intake: httpx.AsyncClient, strict_tracking: httpx.AsyncClient, env: Env
) -> None:
    code = (await intake.post("/v1/cases", json=make_case())).json()["tracking_code"]
    folded = await eventually(
        lambda: scalar(env.database_url, "SELECT count(*) FROM tracking.cases"), until=lambda n: n == 1
    )
    assert folded == 1
    for _ in range(5):
        assert (await strict_tracking.get(f"/v1/track/{code}")).status_code == 200
    for _ in range(3):
        assert (await strict_tracking.get(f"/v1/track/{tracking_code.generate()}")).status_code == 404
    assert (await strict_tracking.get(f"/v1/track/{code}")).status_code == 429


async def test_readiness_needs_postgresql_but_survives_a_nats_outage(
    strict_tracking: httpx.AsyncClient, env: Env
) -> None:
    assert (await strict_tracking.get("/readyz")).json() == {
        "ready": True,
        "degraded": [],
        "checks": {"postgresql": "ok", "nats": "ok"},
    }
    env.nats.stop(kill=True)
    during = await strict_tracking.get("/readyz")
    assert during.status_code == 200 and during.json()["degraded"] == ["nats"]
