"""After the decision, a citizen rates the service once; the rating goes on the bus, the comment stays."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime

import httpx
import nats

from shared import tracking_code
from shared.events import STREAM, make_envelope, subject_for
from shared.events.workflow import StepChanged
from tests.builders import make_case
from tests.conftest import Env
from tests.waiting import eventually, query, scalar


async def decide(env: Env, case_id: str, *, procedure: str = "permis-construire") -> None:
    """workflow's decision, published as its relay would."""
    event = StepChanged(
        case_id=uuid.UUID(case_id),
        version=2,
        action="accept",
        from_step="review",
        to_step="accepted",
        actor="agent",
        by="agent-1",
        at=datetime.now(UTC),
        clock_paused=False,
        legal_deadline=date.today(),
        outcome="accepted",
    )
    nc = await nats.connect(env.nats_url)
    try:
        envelope = make_envelope(event, case_id=event.case_id, procedure=procedure)
        subject = subject_for(procedure=procedure, case_id=event.case_id, event=event)
        await nc.jetstream().publish(subject, envelope.model_dump_json().encode(), stream=STREAM)
    finally:
        await nc.close()
    await eventually(
        lambda: scalar(
            env.database_url, "SELECT count(*) FROM intake.decisions WHERE case_id = $1", event.case_id
        ),
        until=lambda n: n == 1,
    )


async def test_a_decided_case_is_rated_once_and_the_comment_stays_in_intake(
    intake: httpx.AsyncClient, env: Env
) -> None:
    case = (await intake.post("/v1/cases", json=make_case())).json()
    code = case["tracking_code"]
    early = await intake.post("/v1/ratings", json={"tracking_code": code, "rating": 4}, params={"lang": "en"})
    assert early.status_code == 409 and "once the case is decided" in early.json()["detail"]

    await decide(env, case["case_id"])
    comment = "Merci à Mme Durand, très à l'écoute."
    rated = await intake.post(
        "/v1/ratings", json={"tracking_code": code.lower().replace("-", ""), "rating": 5, "comment": comment}
    )
    assert rated.status_code == 201, rated.text
    assert rated.json()["rating"] == 5
    again = await intake.post("/v1/ratings", json={"tracking_code": code, "rating": 1}, params={"lang": "fr"})
    assert again.status_code == 409 and "déjà été noté" in again.json()["detail"]

    events = await query(env.database_url, "SELECT type, envelope::text FROM intake.events ORDER BY version")
    assert [e["type"] for e in events] == ["fr.suivi.case.submitted.v1", "fr.suivi.case.rated.v1"]
    assert "Durand" not in events[1]["envelope"] and '"with_comment": true' in events[1]["envelope"]
    assert await scalar(env.database_url, "SELECT comment FROM intake.ratings") == comment


async def test_a_bad_rating_is_a_clear_4xx(intake: httpx.AsyncClient, env: Env) -> None:
    case = (await intake.post("/v1/cases", json=make_case())).json()
    await decide(env, case["case_id"])
    too_high = await intake.post("/v1/ratings", json={"tracking_code": case["tracking_code"], "rating": 6})
    assert too_high.status_code == 422 and too_high.json()["errors"][0]["field"] == "rating"
    unknown = await intake.post("/v1/ratings", json={"tracking_code": tracking_code.generate(), "rating": 3})
    assert unknown.status_code == 404
    assert await scalar(env.database_url, "SELECT count(*) FROM intake.ratings") == 0


async def test_a_comment_that_cannot_be_stored_is_named_not_a_500(
    intake: httpx.AsyncClient, env: Env
) -> None:
    case = (await intake.post("/v1/cases", json=make_case())).json()
    await decide(env, case["case_id"])
    for bad in ("nul\u0000", "moitié \udfff"):
        body = json.dumps({"tracking_code": case["tracking_code"], "rating": 3, "comment": bad})
        answer = await intake.post("/v1/ratings", content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] == "comment"
    assert await scalar(env.database_url, "SELECT count(*) FROM intake.ratings") == 0
