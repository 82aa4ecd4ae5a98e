"""A citizen answers the city hall's request with their tracking code: the answer stays in intake, the bus
only hears that it arrived, and tracking shows it in the case's history."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest

from services.intake.app import create_app as create_intake
from shared import tracking_code
from shared.events import STREAM, parse, subject_for
from shared.events.intake import CitizenReplied
from tests.builders import make_case
from tests.conftest import Env, _client, intake_settings
from tests.waiting import eventually, query, scalar

MESSAGE = "Voici le plan de masse signé, comme demandé par Mme Lefèvre."
DOCUMENTS = ["https://depot.example.org/pieces/plan-de-masse-PC-2026-0042.pdf"]


def make_reply(message: str = MESSAGE, documents: list[str] | None = None) -> dict[str, Any]:
    return {"message": message, "documents": DOCUMENTS if documents is None else documents}


async def submit(intake: httpx.AsyncClient) -> dict[str, Any]:
    answer = await intake.post("/v1/cases", json=make_case())
    assert answer.status_code == 201, answer.text
    case: dict[str, Any] = answer.json()
    return case


async def send_reply(
    client: httpx.AsyncClient,
    code: str,
    *,
    body: dict[str, Any],
    lang: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A citizen's reply: their tracking code goes in the body, never in a URL (logs keep URLs)."""
    return await client.post(
        "/v1/replies",
        params={"lang": lang} if lang else None,
        json={"tracking_code": code, **body},
        headers=headers,
    )


def _errors(answer: httpx.Response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in answer.json().get("errors", [])}


async def _recorded(env: Env) -> tuple[int, int]:
    """How many replies intake holds, and how many events beyond the cases' first."""
    replies = await scalar(env.database_url, "SELECT count(*) FROM intake.replies")
    events = await scalar(env.database_url, "SELECT count(*) FROM intake.events WHERE version > 1")
    return replies, events


async def _published_reply(env: Env, case: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    subject = subject_for(
        procedure=case["procedure"], case_id=uuid.UUID(case["case_id"]), event=CitizenReplied
    )
    nc = await nats.connect(env.nats_url)
    try:
        js = nc.jetstream()

        async def last() -> Any:
            try:
                return await js.get_last_msg(STREAM, subject)
            except nats.js.errors.NotFoundError:
                return None

        msg = await eventually(last, until=lambda m: m is not None)
    finally:
        await nc.close()
    assert msg is not None, "CitizenReplied never reached JetStream"
    return msg.data, dict(msg.headers or {})


@pytest.fixture
async def strict_intake(env: Env) -> AsyncIterator[httpx.AsyncClient]:
    """intake forgiving a single missed code a minute."""
    async for client in _client(create_intake(intake_settings(env, INTAKE_REPLY_MISS_LIMIT="1/minute"))):
        yield client


async def test_a_citizen_sends_the_documents_asked_for(
    intake: httpx.AsyncClient, tracking: httpx.AsyncClient, env: Env
) -> None:
    case = await submit(intake)
    typed = case["tracking_code"].lower().replace("-", "")

    answer = await send_reply(intake, typed, body=make_reply())

    assert answer.status_code == 202, answer.text
    reply = answer.json()
    assert set(reply) == {"reply_id", "received_at"}
    stored = (await query(env.database_url, "SELECT * FROM intake.replies"))[0]
    assert (str(stored["reply_id"]), stored["message"], stored["documents"]) == (
        reply["reply_id"],
        MESSAGE,
        f'["{DOCUMENTS[0]}"]',
    )
    assert await scalar(env.database_url, "SELECT max(version) FROM intake.events") == 2

    body, headers = await _published_reply(env, case)
    envelope, event = parse(body)
    assert isinstance(event, CitizenReplied)
    assert (str(event.reply_id), event.documents, envelope.subject) == (reply["reply_id"], 1, case["case_id"])
    on_the_bus = body.decode() + repr(headers)
    for private in ("plan de masse", "Lefèvre", "depot.example.org", "plan-de-masse"):
        assert private not in on_the_bus

    view = await eventually(
        lambda: _tracked(tracking, case["tracking_code"]),
        until=lambda v: any(h["kind"] == "citizen-replied" for h in v["history"]),
    )
    assert [(h["kind"], h["label"]) for h in view["history"]][-1] == ("citizen-replied", "Reply received")
    assert view["version"] == 1, "a reply is not a workflow event"
    assert MESSAGE not in str(view)


async def _tracked(tracking: httpx.AsyncClient, code: str) -> dict[str, Any]:
    view: dict[str, Any] = (await tracking.get(f"/v1/track/{code}", params={"lang": "en"})).json()
    return view


async def test_a_reply_without_documents_is_fine(intake: httpx.AsyncClient, env: Env) -> None:
    case = await submit(intake)
    answer = await send_reply(intake, case["tracking_code"], body={"message": "Mon père est Jean."})
    assert answer.status_code == 202, answer.text
    body, _ = await _published_reply(env, case)
    assert parse(body)[1].model_dump()["documents"] == 0


def _mistyped(code: str) -> str:
    return ("1" if code[0] != "1" else "2") + code[1:]


@pytest.mark.parametrize(
    ("path", "status", "en"),
    [
        pytest.param(_mistyped, 422, "looks mistyped", id="mistyped"),
        pytest.param(lambda code: "not-a-code", 422, "is not shaped like a tracking code", id="malformed"),
        pytest.param(lambda code: tracking_code.generate(), 404, "No case matches", id="unknown"),
    ],
)
async def test_a_wrong_code_is_answered_as_tracking_answers_it(
    intake: httpx.AsyncClient, env: Env, path: Any, status: int, en: str
) -> None:
    case = await submit(intake)
    answer = await send_reply(intake, path(case["tracking_code"]), lang="en", body=make_reply())
    assert answer.status_code == status, answer.text
    assert en in answer.json()["detail"]
    assert answer.headers["content-type"] == "application/problem+json"
    assert await _recorded(env) == (0, 0)


@pytest.mark.parametrize(
    ("body", "field", "fr", "en"),
    [
        (make_reply(message=""), "message", "obligatoire", "required"),
        (make_reply(message="   \n "), "message", "obligatoire", "required"),
        (make_reply(message="x" * 4001), "message", "4000", "4000"),
        ({"documents": DOCUMENTS}, "message", "obligatoire", "required"),
        (
            make_reply(documents=[f"https://depot.example.org/{i}.pdf" for i in range(21)]),
            "documents",
            "20",
            "20",
        ),
        (make_reply(documents=["http://depot.example.org/plan.pdf"]), "documents.0", "https://", "https://"),
        (make_reply(documents=[*DOCUMENTS, "plan.pdf"]), "documents.1", "https://", "https://"),
    ],
)
async def test_a_bad_reply_names_the_field_and_records_nothing(
    intake: httpx.AsyncClient, env: Env, body: dict[str, Any], field: str, fr: str, en: str
) -> None:
    code = (await submit(intake))["tracking_code"]
    for lang, expected in (("fr", fr), ("en", en)):
        answer = await send_reply(intake, code, lang=lang, body=body)
        assert answer.status_code == 422, answer.text
        assert expected in _errors(answer).get(field, ""), _errors(answer)
    assert await _recorded(env) == (0, 0)


async def test_too_many_wrong_codes_are_slowed_down(strict_intake: httpx.AsyncClient) -> None:
    code = (await submit(strict_intake))["tracking_code"]
    unknown = await send_reply(strict_intake, tracking_code.generate(), body=make_reply())
    assert unknown.status_code == 404

    blocked = await send_reply(strict_intake, code, lang="en", body=make_reply())

    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1
    assert "Try again in" in blocked.json()["detail"]


async def test_guesses_sent_at_once_get_one_miss_and_then_429(strict_intake: httpx.AsyncClient) -> None:
    await submit(strict_intake)
    answers = await asyncio.gather(
        *[send_reply(strict_intake, tracking_code.generate(), body=make_reply()) for _ in range(50)]
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [404] + [429] * 49
    assert all(int(a.headers["Retry-After"]) >= 1 for a in answers if a.status_code == 429)


async def test_a_right_code_gives_its_miss_back(strict_intake: httpx.AsyncClient) -> None:
    code = (await submit(strict_intake))["tracking_code"]
    for _ in range(3):
        assert (await send_reply(strict_intake, code, body=make_reply())).status_code == 202
    assert (await send_reply(strict_intake, tracking_code.generate(), body=make_reply())).status_code == 404


async def test_a_retried_reply_is_recorded_once(intake: httpx.AsyncClient, env: Env) -> None:
    code = (await submit(intake))["tracking_code"]
    key = {"Idempotency-Key": "reply-form-1"}

    first = await send_reply(intake, code, body=make_reply(), headers=key)
    again = await send_reply(intake, code, body=make_reply(), headers=key)

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.content == again.content
    assert await _recorded(env) == (1, 1)


async def test_concurrent_retries_record_one_reply(intake: httpx.AsyncClient, env: Env) -> None:
    code = (await submit(intake))["tracking_code"]
    answers = await asyncio.gather(
        *[
            send_reply(intake, code, body=make_reply(), headers={"Idempotency-Key": "double-click"})
            for _ in range(6)
        ]
    )
    assert [a.status_code for a in answers] == [202] * 6, [a.text for a in answers]
    assert len({a.content for a in answers}) == 1
    assert sorted(a.headers.get("Idempotent-Replayed", "") for a in answers) == [""] + ["true"] * 5
    assert await _recorded(env) == (1, 1)


async def test_a_key_reused_at_the_same_moment_is_refused_not_a_500(
    intake: httpx.AsyncClient, env: Env
) -> None:
    code = (await submit(intake))["tracking_code"]
    bodies = [make_reply(), make_reply(message="Autre chose")] * 3
    answers = await asyncio.gather(
        *[send_reply(intake, code, body=body, headers={"Idempotency-Key": "k"}) for body in bodies]
    )
    assert sorted(a.status_code for a in answers) == [202] * 3 + [422] * 3, [a.text for a in answers]
    assert await _recorded(env) == (1, 1)


async def test_a_key_reused_for_another_reply_is_refused(intake: httpx.AsyncClient, env: Env) -> None:
    code = (await submit(intake))["tracking_code"]
    await send_reply(intake, code, body=make_reply(), headers={"Idempotency-Key": "k"})
    other = await send_reply(
        intake,
        code,
        lang="en",
        body=make_reply(message="Autre chose"),
        headers={"Idempotency-Key": "k"},
    )
    assert other.status_code == 422
    assert "already used" in other.json()["detail"]
    assert await _recorded(env) == (1, 1)


async def test_a_key_belongs_to_its_case(intake: httpx.AsyncClient, env: Env) -> None:
    codes = [(await submit(intake))["tracking_code"] for _ in range(2)]
    answers = [
        await send_reply(intake, code, body=make_reply(), headers={"Idempotency-Key": "1"}) for code in codes
    ]
    assert [a.status_code for a in answers] == [202, 202]
    assert await _recorded(env) == (2, 2)


async def test_replies_sent_at_once_each_get_their_own_version(intake: httpx.AsyncClient, env: Env) -> None:
    code = (await submit(intake))["tracking_code"]
    answers = await asyncio.gather(
        *[send_reply(intake, code, body=make_reply(message=f"Pièce n° {i}")) for i in range(4)]
    )
    assert [a.status_code for a in answers] == [202] * 4, [a.text for a in answers]
    versions = [r[0] for r in await query(env.database_url, "SELECT version FROM intake.events ORDER BY 1")]
    assert versions == [1, 2, 3, 4, 5]
