"""When the city hall asks for documents, the citizen answers from the tracking page: a message and files,
sent on by tracking to intake as multipart, recorded once whatever the double clicks, answered with
thanks, or with the page keeping the message and saying what is wrong in their language."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.intake.app import create_app as create_intake
from services.tracking.app import create_app as create_tracking
from tests.conftest import Env, Tokens, _client, intake_settings, reach_intake_in_process, tracking_settings
from tests.intake.test_documents import EXE, pdf
from tests.waiting import eventually, query
from tests.workflow.test_agents import AGENT, act, open_case

FORM = 'action="/suivi/reponse?lang={lang}#reponse"'


@pytest.fixture
async def intake(env: Env, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = intake_settings(env, documents_dir=tmp_path / "documents")
    async for client in _client(create_intake(settings)):
        yield client


@pytest.fixture
def tracking_app(env: Env) -> FastAPI:
    return create_tracking(tracking_settings(env, intake_url="http://intake"))


@pytest.fixture
async def tracking(tracking_app: FastAPI, intake: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """tracking sending its reply form to the in-process intake."""
    async for client in _client(tracking_app):
        reach_intake_in_process(tracking_app, intake)
        yield client


async def documents_requested(
    intake: httpx.AsyncClient, workflow: httpx.AsyncClient, tracking: httpx.AsyncClient, tokens: Tokens
) -> dict[str, Any]:
    """A building permit an agent checks and finds incomplete; tracking shows it waits for the citizen."""
    case = await open_case(intake, workflow, tokens)
    agent = tokens(*AGENT)
    assert (await act(workflow, agent, case, "start-check", 1)).status_code == 200
    asked = await act(workflow, agent, case, "request-documents", 2, comment="Il manque le plan de masse.")
    assert asked.status_code == 200, asked.text
    waiting = await eventually(
        lambda: tracking.get(f"/v1/track/{case['tracking_code']}"),
        until=lambda r: r.status_code == 200 and r.json()["status"]["turn"] == "citizen",
    )
    assert waiting.json()["status"]["turn"] == "citizen", waiting.text
    return case


def key_of(page: str) -> str:
    found = re.search(r'<input type="hidden" name="idempotency_key" value="([^"]+)">', page)
    assert found, "no idempotency key on the form"
    return found[1]


async def answer(
    tracking: httpx.AsyncClient,
    code: str,
    *,
    key: str,
    message: str,
    files: list[tuple[str, bytes, str]] = (),  # type: ignore[assignment]
    lang: str = "fr",
) -> httpx.Response:
    """What the browser sends for the reply form: the hidden code and key, the message, each file."""
    parts = [("documents", f) for f in files] or [("documents", ("", b"", "application/octet-stream"))]
    return await tracking.post(
        "/suivi/reponse",
        params={"lang": lang},
        data={"code": code, "idempotency_key": key, "message": message},
        files=parts,
    )


async def replies(env: Env) -> list[dict[str, Any]]:
    rows = await query(env.database_url, "SELECT * FROM intake.replies ORDER BY received_at")
    return [dict(r) for r in rows]


async def reply_files(workflow: httpx.AsyncClient, tokens: Tokens, case: dict[str, Any]) -> list[Any]:
    view = await workflow.get(f"/v1/cases/{case['case_id']}", headers=tokens(*AGENT))
    assert view.status_code == 200, view.text
    return [r["files"] for r in view.json()["replies"]]


@pytest.mark.parametrize(
    ("lang", "heading", "thanks"),
    [
        ("fr", "Comment répondre", "Votre réponse est envoyée"),
        ("en", "How to reply", "Your reply has been sent"),
    ],
)
async def test_the_citizen_answers_a_request_with_a_message_and_a_pdf_recorded_once(
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    tracking: httpx.AsyncClient,
    tokens: Tokens,
    env: Env,
    lang: str,
    heading: str,
    thanks: str,
) -> None:
    case = await documents_requested(intake, workflow, tracking, tokens)
    code = case["tracking_code"]

    page = await tracking.get(f"/suivi/{code}", params={"lang": lang})
    assert page.status_code == 200, page.text
    assert FORM.format(lang=lang) in page.text and 'enctype="multipart/form-data"' in page.text
    assert f'<h2 id="reply-heading">{heading}</h2>' in page.text
    assert '<textarea id="reply-message" name="message"' in page.text
    assert re.search(r'<input id="reply-documents" name="documents" type="file" multiple', page.text)
    key = key_of(page.text)
    assert uuid.UUID(key).version == 4

    plan = [("plan de masse.pdf", pdf(), "application/pdf")]
    sent = await answer(tracking, code, key=key, message="Voici le plan de masse.", files=plan, lang=lang)
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == f"/suivi/{code}?lang={lang}&reponse=envoyee#reponse"
    thanked = await tracking.get(sent.headers["location"].split("#")[0])
    assert thanks in thanked.text and FORM.format(lang=lang) not in thanked.text

    double = await answer(tracking, code, key=key, message="Voici le plan de masse.", files=plan, lang=lang)
    assert double.status_code == 303, double.text  # the same reply: recorded once, thanked again
    [recorded] = await replies(env)
    assert recorded["message"] == "Voici le plan de masse."
    [files] = await reply_files(workflow, tokens, case)
    assert [(f["filename"], f["content_type"]) for f in files] == [("plan de masse.pdf", "application/pdf")]


async def test_what_intake_refuses_comes_back_with_the_message_kept_and_the_field_named(
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    tracking: httpx.AsyncClient,
    tokens: Tokens,
    env: Env,
) -> None:
    case = await documents_requested(intake, workflow, tracking, tokens)
    code = case["tracking_code"]
    key = key_of((await tracking.get(f"/suivi/{code}")).text)

    bad = await answer(
        tracking, code, key=key, message="Le <plan>", files=[("plan.pdf", EXE, "application/pdf")]
    )

    assert bad.status_code == 422, bad.text
    assert "<title>Erreur – " in bad.text and 'role="alert"' in bad.text
    assert re.search(r'<a href="#reply-documents">[^<]*plan\.pdf', bad.text)
    assert 'id="reply-documents-error"' in bad.text and 'id="reply-documents-again"' in bad.text
    assert ">Le &lt;plan&gt;</textarea>" in bad.text and key_of(bad.text) == key

    blank = await answer(tracking, code, key=key, message="   ")
    assert blank.status_code == 422
    assert '<a href="#reply-message">Écrivez votre message.</a>' in blank.text
    assert await replies(env) == []


async def test_intake_down_is_a_503_page_keeping_the_message(
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    tracking: httpx.AsyncClient,
    tracking_app: FastAPI,
    tokens: Tokens,
    env: Env,
) -> None:
    case = await documents_requested(intake, workflow, tracking, tokens)
    code = case["tracking_code"]

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("intake is down", request=request)

    tracking_app.state.http = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    page = await answer(
        tracking,
        code,
        key=str(uuid.uuid4()),
        message="Here is the plan",
        lang="en",
        files=[("plan.pdf", pdf(), "application/pdf")],
    )

    assert page.status_code == 503, page.text
    assert page.headers["retry-after"]
    assert "could not be sent right now" in page.text and "choose the files again" in page.text
    assert ">Here is the plan</textarea>" in page.text and 'id="reply-documents-again"' in page.text
    assert await replies(env) == []


async def test_a_case_not_waiting_for_the_citizen_shows_no_reply_form_and_refuses_one(
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    tracking: httpx.AsyncClient,
    tokens: Tokens,
    env: Env,
) -> None:
    case = await open_case(intake, workflow, tokens)
    code = case["tracking_code"]

    page = await eventually(lambda: tracking.get(f"/suivi/{code}"), until=lambda r: r.status_code == 200)
    assert page.status_code == 200
    assert "/suivi/reponse" not in page.text and 'name="message"' not in page.text

    forced = await answer(tracking, code, key=str(uuid.uuid4()), message="Bonjour", lang="en")
    assert forced.status_code == 409
    assert "not waiting for a reply" in forced.text and 'name="message"' not in forced.text
    assert await replies(env) == []


async def test_the_reply_form_has_its_own_body_limit_and_other_routes_keep_theirs(
    tracking: httpx.AsyncClient,
) -> None:
    big = b"x" * 200_000  # over the usual 64 KiB, far under the reply's limit
    # Any code will do: the body is refused before the code is looked at.
    lookup = await tracking.post("/suivi/AAAA-AAAA-AAAA-AAAA-A/avis", data={"comment": big.decode()})
    assert lookup.status_code == 413
    reply = await tracking.post(
        "/suivi/reponse",
        data={"code": "", "message": "x"},
        files=[("documents", ("a.pdf", big, "application/pdf"))],
    )
    assert reply.status_code == 422  # read whole, then refused for its empty code: not for its size
