"""Erasure (RGPD): a case's personal data becomes unrecoverable everywhere Suivi keeps it, on an admin's
request or at the end of the procedure's retention period, while its history, its events and the
statistics remain, and the city's other systems learn of it (`CaseErased`).

The proof searches, after a full scenario (documents in a real S3 server, an agent's actions, a citizen's
reply with a file, a fix check and a rating with comments, e-mails through a real SMTP server, webhooks to
a real receiver), every row of every table of the database, every object of the store, every message on
the stream and every log record for what the applicants gave. A case that is not erased is searched the
same way, and found: the search sees what it should.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import obstore
import pytest

from devtools import dev_issuer
from devtools.servers import SeaweedServer, free_port
from services.intake import erasure
from services.intake.app import create_app as create_intake
from shared.db import create_pool
from shared.events import STREAM
from shared.procedures import load_catalogue
from tests.builders import make_case
from tests.conftest import Env, Smtp, Tokens, _client, intake_settings
from tests.intake.test_documents import multipart, pdf, photo_with_gps, s3_settings, s3_store
from tests.intake.test_ratings import decide
from tests.notify.conftest import Receiver, notify_client, notify_settings
from tests.notify.test_citizen_messages import statuses
from tests.notify.test_webhooks import subscribe
from tests.waiting import eventually, query, scalar
from tests.workflow.test_agents import act

ERASED_TYPE = "fr.suivi.case.erased.v1"


class Person:
    """An applicant whose every word is unique, so that any trace of them is found by searching."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.name = f"Aurélien Vasseur-{tag}"
        self.email = f"a.vasseur.{tag.lower()}@exemple.fr"
        digits = {"Kowalczyk": "612984577", "Brzezinski": "698127734", "Control": "677451290"}[tag]
        self.phone = f"0{digits[0]} {digits[1:3]} {digits[3:5]} {digits[5:7]} {digits[7:]}"
        self.digits = digits
        self.words = [f"Vasseur-{tag}", self.email, digits, f"secret-{tag}"]

    @property
    def applicant(self) -> dict[str, Any]:
        return {"name": self.name, "email": self.email, "phone": self.phone, "notify_by": ["email"]}

    def said(self, what: str) -> str:
        return f"{what} secret-{self.tag}"

    def found_in(self, text: str) -> list[str]:
        return [w for w in self.words if w.lower() in text.lower()]


REPORTER, BUILDER, CONTROL = Person("Kowalczyk"), Person("Brzezinski"), Person("Control")


# --- The system, in process -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    server = SeaweedServer(data=tmp_path_factory.mktemp("seaweed")).start()
    yield server
    server.stop()


@pytest.fixture
async def intake(env: Env, issuer: Path, seaweed: SeaweedServer) -> AsyncIterator[httpx.AsyncClient]:
    """intake keeping files in the real S3 server, and taking admins' tokens (the erasure endpoint)."""
    settings = intake_settings(
        env,
        oidc_issuer=dev_issuer.DEV_ISSUER,
        oidc_jwks_file=issuer / dev_issuer.JWKS_FILE,
        **s3_settings(seaweed),
    )
    async for client in _client(create_intake(settings)):
        yield client


@pytest.fixture
async def notify(
    env: Env, issuer: Path, intake: httpx.AsyncClient, smtp: Smtp, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    settings = notify_settings(env, issuer, smtp_port=smtp.port, sms_dir=str(tmp_path / "sms"))
    async with notify_client(settings, intake) as client:
        yield client


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = await Receiver().start()
    yield server
    await server.stop()


# --- Searching everything -----------------------------------------------------------------------------------


async def every_row(env: Env) -> list[tuple[str, str]]:
    """(table, row as text) of every row of every table of every service's schema."""
    conn = await asyncpg.connect(env.database_url)
    try:
        tables = await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        )
        rows = []
        for t in tables:
            name = f'"{t["table_schema"]}"."{t["table_name"]}"'
            rows += [(name, r[0]) for r in await conn.fetch(f"SELECT t::text FROM {name} t")]
        return rows
    finally:
        await conn.close()


async def every_object(seaweed: SeaweedServer) -> dict[str, bytes]:
    store = s3_store(seaweed)
    keys = [meta["path"] for batch in obstore.list(store._store) for meta in batch]
    return {key: await store.get(key) for key in keys}


async def every_message(env: Env) -> list[str]:
    """Every message of the CASES stream: subject, headers and body."""
    nc = await nats.connect(env.nats_url)
    try:
        js = nc.jetstream()
        last = (await js.stream_info(STREAM)).state.last_seq
        texts = []
        for seq in range(1, last + 1):
            msg = await js.get_msg(STREAM, seq)
            texts.append(f"{msg.subject} {msg.headers} {(msg.data or b'').decode(errors='replace')}")
        return texts
    finally:
        await nc.close()


def every_log_line(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.getMessage()} {r.__dict__}" for r in caplog.records]


def leaks(person: Person, texts: list[tuple[str, str]]) -> list[str]:
    return [f"{where}: {found}" for where, text in texts if (found := person.found_in(text))]


# --- The scenario ---------------------------------------------------------------------------------------


async def submit(intake: httpx.AsyncClient, case: dict[str, Any], **files: Any) -> dict[str, Any]:
    answer = await intake.post("/v1/cases", **multipart(case, **files))
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def opened(workflow: httpx.AsyncClient, tokens: Tokens, case: dict[str, Any]) -> int:
    answer = await eventually(
        lambda: workflow.get(f"/v1/cases/{case['case_id']}", headers=tokens("admin")),
        until=lambda r: r.status_code == 200,
    )
    return int(answer.json()["version"])


async def a_fixed_street_light(
    intake: httpx.AsyncClient, workflow: httpx.AsyncClient, tokens: Tokens
) -> dict[str, Any]:
    """A report with a photo and an exact place, fixed at once, confirmed fixed and rated, with comments."""
    case = make_case(
        "signalement-voirie",
        applicant=REPORTER.applicant,
        description=REPORTER.said("Le lampadaire devant chez moi ne s'allume plus"),
        location={"address": "12 rue du Marché"},
    )
    report = await submit(intake, case, photo=[("IMG_0001.JPG", photo_with_gps(), "image/jpeg")])
    version = await opened(workflow, tokens, report)
    for action in ("triage", "fix-at-once"):
        answer = await act(workflow, tokens("agent", "voirie"), report, action, version)
        assert answer.status_code == 200, answer.text
        version = answer.json()["version"]
    code = report["tracking_code"]
    fixed = await eventually(
        lambda: intake.post(
            "/v1/fix-checks", json={"tracking_code": code, "fixed": True, "comment": REPORTER.said("Merci")}
        ),
        until=lambda r: r.status_code == 201,
    )
    assert fixed.status_code == 201, fixed.text
    rated = await intake.post(
        "/v1/ratings", json={"tracking_code": code, "rating": 5, "comment": REPORTER.said("Très rapide")}
    )
    assert rated.status_code == 201, rated.text
    return report


async def a_permit_answered_with_a_file(
    intake: httpx.AsyncClient, workflow: httpx.AsyncClient, tokens: Tokens, person: Person
) -> dict[str, Any]:
    """A building permit with a plan; the agent asks for a document, the citizen replies with a file."""
    case = make_case(
        "permis-construire", applicant=person.applicant, parcel_address=person.said("5 chemin des Saules")
    )
    plan = pdf() + person.said("plan").encode()
    permit = await submit(intake, case, plans=[("plan.pdf", plan, "application/pdf")])
    version = await opened(workflow, tokens, permit)
    for action in ("take", "start-check", "request-documents"):
        answer = await act(workflow, tokens("agent", "urbanisme"), permit, action, version)
        assert answer.status_code == 200, answer.text
        version = answer.json()["version"]
    reply = {"tracking_code": permit["tracking_code"], "message": person.said("Voici l'attestation")}
    attestation = pdf() + person.said("attestation").encode()
    parts = [
        ("reply", (None, json.dumps(reply), "application/json")),
        ("documents", ("attestation.pdf", attestation, "application/pdf")),
    ]
    answer = await intake.post("/v1/replies", files=parts)
    assert answer.status_code == 202, answer.text
    return permit


async def erase(intake: httpx.AsyncClient, tokens: Tokens, case_id: str, **body: Any) -> httpx.Response:
    return await intake.post(f"/v1/admin/cases/{case_id}/erasure", headers=tokens("admin"), json=body or None)


@pytest.mark.timeout(180)
async def test_an_erased_case_leaves_no_personal_data_anywhere_and_its_history_remains(
    env: Env,
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    notify: httpx.AsyncClient,
    tracking: httpx.AsyncClient,
    stats: httpx.AsyncClient,
    smtp: Smtp,
    receiver: Receiver,
    seaweed: SeaweedServer,
    tokens: Tokens,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await subscribe(notify, tokens, receiver.url)
    report = await a_fixed_street_light(intake, workflow, tokens)
    permit = await a_permit_answered_with_a_file(intake, workflow, tokens, BUILDER)
    control = await a_permit_answered_with_a_file(intake, workflow, tokens, CONTROL)
    for case in (report, permit, control):  # every citizen heard of their case
        await eventually(
            lambda case=case: statuses(notify, case["case_id"]),
            until=lambda s: s and all(status in ("sent", "opted-out") for _, _, status in s),
        )
    assert smtp.to(REPORTER.email) and smtp.to(BUILDER.email) and smtp.to(CONTROL.email)
    keys_before = await every_object(seaweed)
    assert len(keys_before) == 5  # the photo, two plans, two attestations
    before = await query(env.database_url, "SELECT count(*) AS n FROM intake.events")

    erased = await erase(intake, tokens, report["case_id"], reference="RGPD-2026-0042")
    assert erased.status_code == 200, erased.text
    assert erased.json() | {"erased_at": None} == {
        "case_id": report["case_id"],
        "reason": "request",
        "erased_at": None,
        "reference": "RGPD-2026-0042",
        "documents_deleted": 1,
        "documents_pending": 0,
        "already": False,
    }
    permit_erased = await erase(intake, tokens, permit["case_id"])
    assert permit_erased.json()["documents_deleted"] == 2
    again = await erase(intake, tokens, report["case_id"])
    assert again.status_code == 200 and again.json()["already"] is True
    assert again.json()["erased_at"] == erased.json()["erased_at"]

    # The city's other systems learn of it, once per case; notify dropped what it had.
    await eventually(
        lambda: asyncio.sleep(
            0, result=[r.event for r in receiver.delivered() if r.event["type"] == ERASED_TYPE]
        ),
        until=lambda events: len(events) == 2,
    )
    erasures = [r.event for r in receiver.delivered() if r.event["type"] == ERASED_TYPE]
    assert sorted(e["subject"] for e in erasures) == sorted([report["case_id"], permit["case_id"]])
    assert {e["data"]["reason"] for e in erasures} == {"request"}
    await eventually(
        lambda: scalar(
            env.database_url,
            "SELECT count(*) FROM notify.folded_events f JOIN notify.events e USING (event_id) "
            "WHERE e.type = $1",
            ERASED_TYPE,
        ),
        until=lambda n: n == 2,
    )

    # Searched everywhere: nothing of the two erased applicants; the control applicant is found where
    # intake keeps them (the search sees).
    rows = await every_row(env)
    objects = await every_object(seaweed)
    messages = await every_message(env)
    logs = every_log_line(caplog)
    everything = (
        rows
        + [(f"s3:{k}", v.decode(errors="replace")) for k, v in objects.items()]
        + [("stream", m) for m in messages]
        + [("log", line) for line in logs]
    )
    for person in (REPORTER, BUILDER):
        assert not leaks(person, everything), leaks(person, everything)
    found = leaks(CONTROL, everything)
    assert any(w.startswith('"intake"."applicants"') for w in found), found
    assert any(w.startswith('"intake"."replies"') for w in found), found
    assert sum(w.startswith("s3:") for w in found) == 2, found
    assert len(objects) == 2 and set(objects) < set(keys_before)
    assert not await scalar(
        env.database_url,
        "SELECT count(*) FROM intake.report_places WHERE case_id = $1",
        uuid.UUID(report["case_id"]),
    )
    assert not await scalar(env.database_url, "SELECT count(*) FROM intake.erased_objects")

    # What remains: the history (every event, one more each), the public lookup, the agents' view, the
    # statistics.
    after = await query(env.database_url, "SELECT count(*) AS n FROM intake.events")
    assert after[0]["n"] == before[0]["n"] + 2
    tracked = await tracking.get(f"/v1/track/{report['tracking_code']}")
    assert tracked.status_code == 200 and tracked.json()["steps"], tracked.text
    view = await workflow.get(f"/v1/cases/{report['case_id']}", headers=tokens("agent", "voirie"))
    assert view.status_code == 200, view.text
    assert not REPORTER.found_in(view.text)
    assert (
        view.json()["applicant"] is None
        and view.json()["personal_data_erased_at"] == erased.json()["erased_at"]
    )
    counted = await eventually(
        lambda: scalar(
            env.database_url,
            "SELECT count(*) FROM stats.reports WHERE case_id = $1",
            uuid.UUID(report["case_id"]),
        ),
        until=lambda n: n == 1,
    )
    assert counted == 1

    # Nothing personal comes back: the tracking code takes no more answers, kindly.
    late = await intake.post(
        "/v1/replies",
        json={"tracking_code": permit["tracking_code"], "message": "encore moi"},
        params={"lang": "en"},
    )
    assert late.status_code == 410 and "erased" in late.json()["detail"], late.text


async def test_only_an_admin_erases_and_an_unknown_case_is_a_404(
    intake: httpx.AsyncClient, tokens: Tokens
) -> None:
    case = (await intake.post("/v1/cases", json=make_case())).json()
    url = f"/v1/admin/cases/{case['case_id']}/erasure"
    assert (await intake.post(url)).status_code == 401
    refused = await intake.post(url, headers=tokens("agent", "urbanisme"), params={"lang": "en"})
    assert refused.status_code == 403, refused.text
    unknown = await intake.post(
        f"/v1/admin/cases/{uuid.uuid4()}/erasure", headers=tokens("admin"), params={"lang": "en"}
    )
    assert unknown.status_code == 404 and "no case" in unknown.json()["detail"]
    named = await intake.post(
        url, headers=tokens("admin"), json={"reference": "Demande de M. <script>"}, params={"lang": "en"}
    )
    assert named.status_code == 422  # a reference, not a sentence about someone


async def test_the_retention_sweep_erases_decided_cases_once_their_period_ends(
    env: Env, intake: httpx.AsyncClient, seaweed: SeaweedServer
) -> None:
    """acte-naissance keeps its applicants' data 3 months after the decision; a case not decided, or
    decided too recently, keeps it."""
    ripe, recent, open_ = [
        (await intake.post("/v1/cases", json=make_case("acte-naissance"))).json() for _ in range(3)
    ]
    for case in (ripe, recent):
        await decide(env, case["case_id"], procedure="acte-naissance")
    decided = datetime.now(UTC)
    await _backdate(env, recent["case_id"], decided + timedelta(days=60))
    catalogue = load_catalogue(Path(__file__).resolve().parent.parent / "procedures")
    pool = await create_pool(env.database_url, max_size=2)  # as intake's: JSON columns as dicts
    try:
        later = decided + timedelta(days=100)  # past 3 months for `ripe`, not for `recent`
        assert await erasure.sweep(pool, s3_store(seaweed), catalogue, now=later) == 1
        assert await erasure.sweep(pool, s3_store(seaweed), catalogue, now=later) == 0  # once
    finally:
        await pool.close()
    rows = await query(env.database_url, "SELECT case_id, reason FROM intake.erasures")
    assert [(str(r["case_id"]), r["reason"]) for r in rows] == [(ripe["case_id"], "retention")]
    applicants = await query(env.database_url, "SELECT case_id FROM intake.applicants")
    assert {str(r["case_id"]) for r in applicants} == {recent["case_id"], open_["case_id"]}
    data = await scalar(
        env.database_url, "SELECT data::text FROM intake.cases WHERE case_id = $1", uuid.UUID(ripe["case_id"])
    )
    # The form keeps its public facts (what the bus carries); the names and the birth date are gone.
    assert json.loads(data) == {"kind": "extrait-avec-filiation", "delivery": "courrier"}


async def _backdate(env: Env, case_id: str, decided_at: datetime) -> None:
    """Make a case look decided at `decided_at` (the sweep reads intake's copy of the decision)."""
    conn = await asyncpg.connect(env.database_url)
    try:
        await conn.execute(
            "UPDATE intake.decisions SET decided_at = $2 WHERE case_id = $1", uuid.UUID(case_id), decided_at
        )
    finally:
        await conn.close()


async def test_an_erasure_cancels_the_messages_notify_has_not_sent_yet(
    env: Env, issuer: Path, intake: httpx.AsyncClient, tokens: Tokens, tmp_path: Path
) -> None:
    """The mail server is down: the receipt waits to be tried again. Once the case is erased, it is never
    sent, and the provider's error (which could quote the address) is gone."""
    down = Smtp(maildir=tmp_path / "never", port=free_port())  # never started
    settings = notify_settings(env, issuer, smtp_port=down.port, send_retry_schedule=(0.3,) * 100)
    async with notify_client(settings, intake) as notify:
        case = (await intake.post("/v1/cases", json=make_case(applicant=BUILDER.applicant))).json()
        await eventually(
            lambda: statuses(notify, case["case_id"]), until=lambda s: s and s[0][2] == "temporary-failure"
        )
        assert (await erase(intake, tokens, case["case_id"])).status_code == 200
        told = await eventually(
            lambda: notify.get(
                f"/internal/v1/cases/{case['case_id']}/notifications",
                headers={"Authorization": "Bearer development-internal-token"},
            ),
            until=lambda r: r.json()["notifications"][0]["status"] == "permanent-failure",
        )
        shown = told.json()["notifications"][0]
        assert shown["reason"] == "the citizen's personal data was erased", shown
