"""A citizen hears of what changes in their case, by the channels they chose, in their language: e-mails
through a real SMTP server (kept in a Maildir), SMS through the file sink; each message once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from devtools.servers import free_port
from services.notify.content import GSM7, SMS_MAX
from services.notify.settings import NotifySettings
from tests.builders import act_now, make_case
from tests.conftest import Env, Smtp, Tokens, _client, reach_intake_in_process, workflow_app
from tests.notify.conftest import Receiver, notify_client, notify_settings
from tests.notify.test_webhooks import Start
from tests.waiting import eventually
from tests.workflow.test_agents import act, open_case

AGENT = ("agent", "urbanisme")


def settings_for(env: Env, issuer: Path, smtp: Smtp, sms_dir: Path, **overrides: Any) -> NotifySettings:
    return notify_settings(env, issuer, smtp_port=smtp.port, sms_dir=str(sms_dir), **overrides)


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(app):
        yield client


@pytest.fixture
async def notify(
    env: Env, issuer: Path, smtp: Smtp, tmp_path: Path, intake: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    """notify in process, sending to the test's SMTP server."""
    async with notify_client(settings_for(env, issuer, smtp, tmp_path / "sms"), intake) as client:
        yield client


def internal() -> dict[str, str]:
    return {"Authorization": "Bearer development-internal-token"}


async def statuses(notify: httpx.AsyncClient, case_id: str) -> list[tuple[str, str | None, str]]:
    answer = await notify.get(f"/internal/v1/cases/{case_id}/notifications", headers=internal())
    assert answer.status_code == 200, answer.text
    return [(n["kind"], n["channel"], n["status"]) for n in answer.json()["notifications"]]


def sms_files(directory: Path) -> list[dict[str, str]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.json"))]


def body(message: EmailMessage, subtype: str = "plain") -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    return str(part.get_content())


async def test_a_building_permit_from_submission_to_decision_sends_exactly_the_expected_messages(
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    notify: httpx.AsyncClient,
    tokens: Tokens,
    smtp: Smtp,
    tmp_path: Path,
) -> None:
    address = "camille.martin@example.org"
    case = await open_case(intake, workflow, tokens)
    code = case["tracking_code"]

    received = await eventually(lambda: _async(smtp.to(address)), until=lambda m: len(m) == 1)
    assert len(received) == 1
    receipt = received[0]
    assert (
        receipt["Subject"] == "Votre demande est enregistrée : Permis de construire une maison individuelle"
    )
    text = body(receipt)
    assert code in text and f"/suivi/{code}?lang=fr" in text
    assert "Camille" not in text and "Martin" not in text  # no more personal data than needed
    assert f'href="http://127.0.0.1:8003/suivi/{code}?lang=fr"' in body(receipt, "html")
    assert receipt["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert receipt["Message-ID"].endswith("@suivi.notify>")

    agent = tokens(*AGENT, agent="claire")
    version = case["version"]
    for action in ("take", "start-check", "request-documents", "receive-documents", "start-review", "accept"):
        answer = await act(workflow, agent, case, action, version)
        assert answer.status_code == 200, answer.text
        version = answer.json()["version"]

    messages = await eventually(lambda: _async(smtp.to(address)), until=lambda m: len(m) >= 3)
    subjects = [m["Subject"] for m in messages]
    assert subjects == [
        "Votre demande est enregistrée : Permis de construire une maison individuelle",
        "La mairie attend une réponse de votre part : Permis de construire une maison individuelle",
        "Décision sur votre demande : Permis de construire une maison individuelle",
    ]
    assert "Pièces complémentaires demandées" in body(messages[1])
    assert "Permis accordé" in body(messages[2]) or "accord" in body(messages[2]).lower()
    assert len({m["Message-ID"] for m in messages}) == 3
    assert await eventually(
        lambda: statuses(notify, case["case_id"]), until=lambda s: all(x[2] == "sent" for x in s)
    ) == [
        ("received", "email", "sent"),
        ("action-needed", "email", "sent"),
        ("decided", "email", "sent"),
    ]
    assert sms_files(tmp_path / "sms") == []  # e-mail only was chosen (the default with an address)


async def test_sms_and_email_both_in_the_citizens_language_within_one_sms(
    intake: httpx.AsyncClient, notify: httpx.AsyncClient, smtp: Smtp, tmp_path: Path
) -> None:
    applicant = {"email": "alex@example.org", "language": "en", "notify_by": ["email", "sms"]}
    answer = await intake.post("/v1/cases", json=make_case("declaration-prealable", applicant=applicant))
    assert answer.status_code == 201, answer.text
    case = answer.json()

    sms = await eventually(lambda: _async(sms_files(tmp_path / "sms")), until=lambda s: len(s) == 1)
    assert len(sms) == 1
    assert sms[0]["to"] == "+33612345678"
    assert sms[0]["text"].startswith("City hall: your application is registered. Tracking code ")
    assert case["tracking_code"] in sms[0]["text"]
    assert len(sms[0]["text"]) <= SMS_MAX and set(sms[0]["text"]) <= GSM7

    mails = await eventually(lambda: _async(smtp.to("alex@example.org")), until=lambda m: len(m) == 1)
    assert [m["Subject"] for m in mails] == ["Your application is registered: Prior declaration of works"]
    assert "Stop the messages about this case" in body(mails[0])
    assert sorted(
        await eventually(
            lambda: statuses(notify, case["case_id"]), until=lambda s: all(x[2] == "sent" for x in s)
        )
    ) == [
        ("received", "email", "sent"),
        ("received", "sms", "sent"),
    ]


async def test_a_choice_of_sms_without_a_phone_number_is_refused_in_the_citizens_language(
    intake: httpx.AsyncClient,
) -> None:
    applicant = {"email": "alex@example.org", "phone": None, "notify_by": ["sms"]}
    answer = await intake.post("/v1/cases?lang=en", json=make_case(applicant=applicant))
    assert answer.status_code == 422, answer.text
    errors = answer.json()["errors"]
    assert {"field": "applicant.phone", "message": "Give a mobile phone number to be told by SMS."} in errors


async def test_the_link_in_each_message_stops_the_cases_messages(
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    notify: httpx.AsyncClient,
    tokens: Tokens,
    smtp: Smtp,
) -> None:
    address = "camille.martin@example.org"
    case = await open_case(intake, workflow, tokens)
    receipt = (await eventually(lambda: _async(smtp.to(address)), until=lambda m: len(m) == 1))[0]
    link = receipt["List-Unsubscribe"].strip("<>")
    path = httpx.URL(link).path

    page = await notify.get(path, params={"lang": "fr"})
    assert page.status_code == 200 and "Arrêter les messages" in page.text
    assert (await notify.get(path.replace("stop/", "stop/x"))).status_code == 404
    sent = await eventually(lambda: statuses(notify, case["case_id"]), until=lambda s: s[0][2] == "sent")
    assert sent == [("received", "email", "sent")]

    done = await notify.post(path, params={"lang": "fr"}, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "vous ne recevrez plus de messages" in done.text

    agent = tokens(*AGENT, agent="claire")
    version = case["version"]
    for action in ("take", "start-check", "request-documents"):
        version = (await act(workflow, agent, case, action, version)).json()["version"]
    told = await eventually(
        lambda: statuses(notify, case["case_id"]), until=lambda s: len(s) == 2 and s[1][2] != "pending"
    )
    assert told == [("received", "email", "sent"), ("action-needed", None, "opted-out")]
    assert len(smtp.to(address)) == 1


async def test_a_mail_server_down_is_a_temporary_failure_retried_until_it_is_back(
    env: Env, issuer: Path, intake: httpx.AsyncClient, tmp_path: Path
) -> None:
    down = Smtp(maildir=tmp_path / "later", port=free_port())  # not started yet
    settings = settings_for(env, issuer, down, tmp_path / "sms", send_retry_schedule=(0.5,) * 40)
    async with notify_client(settings, intake) as notify:
        case = (await intake.post("/v1/cases", json=make_case())).json()
        failing = await eventually(
            lambda: statuses(notify, case["case_id"]), until=lambda s: s and s[0][2] == "temporary-failure"
        )
        assert failing == [("received", "email", "temporary-failure")]
        reason = await notify.get(f"/internal/v1/cases/{case['case_id']}/notifications", headers=internal())
        assert "cannot reach the mail server" in reason.json()["notifications"][0]["reason"]

        down.start()
        try:
            sent = await eventually(
                lambda: statuses(notify, case["case_id"]), until=lambda s: s[0][2] == "sent"
            )
            assert sent == [("received", "email", "sent")]
            assert len(down.to("camille.martin@example.org")) == 1
        finally:
            down.stop()


async def test_a_mail_server_that_stays_down_is_given_up_after_the_schedule_with_the_tries_counted(
    env: Env, issuer: Path, intake: httpx.AsyncClient, tmp_path: Path
) -> None:
    never = Smtp(maildir=tmp_path / "never", port=free_port())  # never started
    settings = settings_for(env, issuer, never, tmp_path / "sms", send_retry_schedule=(0.2, 0.2))
    async with notify_client(settings, intake) as notify:
        case = (await intake.post("/v1/cases", json=make_case())).json()
        given_up = await eventually(
            lambda: statuses(notify, case["case_id"]), until=lambda s: s and s[0][2] == "permanent-failure"
        )
        assert given_up == [("received", "email", "permanent-failure")]
        shown = await notify.get(f"/internal/v1/cases/{case['case_id']}/notifications", headers=internal())
        reason = shown.json()["notifications"][0]["reason"]
        assert reason.startswith("gave up after 3 tries") and "cannot reach the mail server" in reason


async def _async(value: Any) -> Any:
    return value


async def test_an_agent_sees_the_cases_messages_and_their_statuses_in_the_case_view(
    env: Env, issuer: Path, intake: httpx.AsyncClient, notify: httpx.AsyncClient, tokens: Tokens
) -> None:
    app = workflow_app(env, issuer, intake_internal_url="http://intake", notify_internal_url="http://notify")
    async with serving(app) as workflow:
        reach_intake_in_process(app, intake)
        app.state.notify_http = httpx.AsyncClient(transport=notify._transport, base_url="http://notify")
        case = await open_case(intake, workflow, tokens)
        view = await eventually(
            lambda: workflow.get(f"/v1/cases/{case['case_id']}", headers=tokens(*AGENT)),
            until=lambda r: [n["status"] for n in r.json()["notifications"]] == ["sent"],
        )
        told = view.json()
        assert told["notifications_unavailable"] is None
        assert [(n["kind"], n["channel"], n["status"]) for n in told["notifications"]] == [
            ("received", "email", "sent")
        ]
        assert told["notifications"][0]["sent_at"] is not None

        app.state.notify_http = httpx.AsyncClient(base_url="http://127.0.0.1:9")  # notify down
        fallback = (await workflow.get(f"/v1/cases/{case['case_id']}", headers=tokens(*AGENT))).json()
        assert fallback["step"] == "received" and fallback["notifications"] == []
        assert "notify ne répond pas" in fallback["notifications_unavailable"]


async def test_an_http_sms_provider_gets_the_message_and_reports_its_delivery(
    env: Env, issuer: Path, intake: httpx.AsyncClient, receivers: Start, smtp: Smtp, tmp_path: Path
) -> None:
    provider: Receiver = await receivers(
        answer=lambda r: (400, {}) if b"+33699999999" in r.body else (202, {})
    )
    settings = settings_for(
        env,
        issuer,
        smtp,
        tmp_path / "sms",
        sms_provider="http",
        sms_http_url=provider.url,
        sms_http_token="provider-token-123",
    )
    async with notify_client(settings, intake) as notify:
        by_sms = {"email": None, "notify_by": ["sms"]}
        case = (await intake.post("/v1/cases", json=make_case(applicant=by_sms))).json()
        sent = await eventually(
            lambda: statuses(notify, case["case_id"]), until=lambda s: s and s[0][2] == "sent"
        )
        assert sent == [("received", "sms", "sent")]
        request = provider.delivered()[0]
        assert request.headers["authorization"] == "Bearer provider-token-123"
        sms = request.event
        assert sms["to"] == "+33612345678" and case["tracking_code"] in sms["text"]
        assert sms["status_callback"] == "http://127.0.0.1:8005/v1/sms/status"

        report = {"reference": sms["reference"], "status": "delivered"}
        assert (await notify.post("/v1/sms/status", json=report)).status_code == 401
        answer = await notify.post(
            "/v1/sms/status", json=report, headers={"Authorization": "Bearer provider-token-123"}
        )
        assert answer.status_code == 204
        assert await statuses(notify, case["case_id"]) == [("received", "sms", "delivered")]

        refused = {"email": None, "phone": "06 99 99 99 99", "notify_by": ["sms"]}
        other = (await intake.post("/v1/cases", json=make_case(applicant=refused))).json()
        failed = await eventually(
            lambda: statuses(notify, other["case_id"]), until=lambda s: s and s[0][2] == "permanent-failure"
        )
        assert failed == [("received", "sms", "permanent-failure")]
        told = await notify.get(f"/internal/v1/cases/{other['case_id']}/notifications", headers=internal())
        assert told.json()["notifications"][0]["reason"] == "the SMS provider answered 400"


async def test_after_notify_was_down_each_cases_messages_go_out_in_their_events_order(
    env: Env,
    issuer: Path,
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    tokens: Tokens,
    smtp: Smtp,
    tmp_path: Path,
) -> None:
    # notify starts after each case has both a receipt and a request for documents in the stream: its
    # consumer folds the two in one batch (one transaction, so one created_at), and the sender must still
    # send the receipt first. Eight cases, so that an order left to chance shows.
    agent = tokens(*AGENT, agent="claire")
    addresses = [f"backlog{i}@example.org" for i in range(8)]
    for address in addresses:
        submitted = await intake.post("/v1/cases", json=make_case(applicant={"email": address}))
        assert submitted.status_code == 201, submitted.text
        case = submitted.json()
        for action in ("take", "start-check", "request-documents"):
            answer = await act_now(workflow, agent, case, action)
            assert answer.status_code == 200, answer.text

    async with notify_client(settings_for(env, issuer, smtp, tmp_path / "sms"), intake):
        for address in addresses:
            mails = await eventually(lambda a=address: _async(smtp.to(a)), until=lambda m: len(m) == 2)
            assert [m["Subject"].split(" : ")[0] for m in mails] == [
                "Votre demande est enregistrée",
                "La mairie attend une réponse de votre part",
            ], address
