"""A citizen's personal data goes where it must and nowhere else, through a whole scenario on the five
services in process: one case of every procedure in the catalogue (as JSON, through the web form and
through the Open311 door), with a distinctive name, e-mail, phone and identity typed into every field that
takes them; agents move cases on and write notes naming the citizen; the citizen answers a request (API and
web page), rates the service, says a report is fixed; notify sends its e-mails to a real SMTP server and
its SMS to the file sink, and delivers signed webhooks to a real HTTP receiver.

Then every surface is read and searched for the citizen's data (case-insensitive, the phone in the forms
people type it and the E.164 form intake stores): every message that went over NATS, every message kept in
the stream, every public answer (tracking's JSON and pages, Open311, stats' JSON, CSV and open data,
intake's catalogue), every webhook, every log record, every span, the other services' tables and
PostgreSQL's log. Each surface must hold what proves it was read (the cases' ids or codes), so the test
cannot pass by reading nothing.

Where the data must be, it is: intake's tables, the e-mails' `To:` and the SMS's recipient, the agents'
case view (authenticated: 401 without a token) and workflow's notes (the agents' own free text).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import nats
import pytest

from devtools.demo import VALID_DATA
from services.intake.domain import normalize_phone
from shared.events import STREAM
from tests.builders import make_case
from tests.conftest import Tokens, _exporter
from tests.notify.conftest import Receiver
from tests.security.conftest import OPEN311_KEY, Stack, submit_and_open
from tests.security.surfaces import LogRecords, Surface, log_text, streams, tables
from tests.waiting import eventually, query

NAME = "Zéphyrine Quatrevingt"
EMAIL = "zephyrine.q.123@example.org"
PHONE = "+33 6 98 76 54 32"
STORED_PHONE = normalize_phone(PHONE)  # E.164, as intake keeps it
APPLICANT = {"name": NAME, "email": EMAIL, "phone": PHONE, "notify_by": ["email", "sms"]}
SAID = f"C'est {NAME}, joignable au 06 98 76 54 32 ou à {EMAIL}."  # what a citizen types in free text

# What must never be found outside the places it must be, lowercased, by what it is.
PRIVATE = {
    "name": ("zéphyrine", "zephyrine", "quatrevingt"),
    "e-mail": ("zephyrine.q.123", EMAIL),
    "phone": ("698765432", "98 76 54 32", "98.76.54.32", "98-76-54-32"),
    "identity": ("ombeline", "anatole", "wolframine", "1987-03-29", "29/03/1987"),
    "home address": ("xylophonistes",),
    "number plate": ("zq-987-xy", "zq987xy"),
}
HOME = "27 rue des Xylophonistes, 69003 Lyon"
FORMS: dict[str, dict[str, Any]] = {
    "acte-naissance": {
        "surname": "Quatrevingt",
        "first_names": "Zéphyrine Ombeline",
        "birth_date": "1987-03-29",
        "father_name": "Anatole Quatrevingt",
        "mother_name": "Philomène Wolframine",
        "postal_address": HOME,
    },
    "carte-stationnement-resident": {"address": HOME, "vehicle_registration": "ZQ-987-XY"},
    "permis-construire": {"project_description": f"Maison pour la famille Quatrevingt. {SAID}"},
    "signalement-voirie": {"description": f"Le lampadaire ne s'allume plus. {SAID}"},
}
WEB_FORM_PROCEDURE = "declaration-prealable"  # this one goes through intake's web form
ALLOWED_MAIL_HEADERS = ("to",)
# Added by the test's SMTP server (aiosmtpd's Maildir), not by Suivi.
SMTP_SERVER_HEADERS = ("x-peer", "x-mailfrom", "x-rcptto", "x-rcpttos")


# --- What the scenario leaves ---------------------------------------------------------------------


@dataclass
class Scenario:
    cases: dict[str, dict[str, Any]]  # by procedure; "open311" for the 311 app's report
    bus: list[bytes]  # every NATS message sent while it ran, subject, headers and body
    logs: list[logging.LogRecord]
    receiver: Receiver
    agent_note: str

    @property
    def ids(self) -> list[str]:
        return [c["case_id"] for c in self.cases.values()]

    @property
    def codes(self) -> list[str]:
        return [c["tracking_code"] for c in self.cases.values()]


# --- The scenario ------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def records() -> Iterator[LogRecords]:
    """Every log record from the services' start on (autouse: installed before `stack` starts them)."""
    handler = LogRecords()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


@pytest.fixture(scope="module")
async def scenario(records: LogRecords, stack: Stack, module_tokens: Tokens) -> AsyncIterator[Scenario]:
    _exporter.clear()
    receiver = await Receiver().start()
    bus: list[bytes] = []
    nc = await nats.connect(stack.env.nats_url)

    async def record(msg: Any) -> None:
        bus.append(msg.subject.encode() + repr(msg.headers).encode() + msg.data)

    await nc.subscribe(">", cb=record)
    try:
        subscribed = await stack["notify"].post(
            "/v1/subscriptions", headers=module_tokens("admin"), json={"url": receiver.url}
        )
        assert subscribed.status_code == 201, subscribed.text
        cases = await _submit_every_procedure(stack, module_tokens)
        note = await _move_cases_on(stack, module_tokens, cases)
        await _send_bad_input(stack, module_tokens, cases)
        await _settle(stack)
        yield Scenario(cases, bus, records.records, receiver, note)
    finally:
        await nc.close()
        await receiver.stop()


async def _submit_every_procedure(stack: Stack, tokens: Tokens) -> dict[str, dict[str, Any]]:
    catalogue = stack.apps["intake"].state.catalogue
    assert set(VALID_DATA) == set(catalogue.codes()), "a procedure without demo data: give it a valid form"
    cases = {}
    for procedure in catalogue.codes():
        if procedure == WEB_FORM_PROCEDURE:
            continue
        cases[procedure] = await submit_and_open(
            stack, tokens, procedure, applicant=APPLICANT, **FORMS.get(procedure, {})
        )
    cases[WEB_FORM_PROCEDURE] = await _submit_by_the_web_form(stack, tokens)
    cases["open311"] = await _submit_by_open311(stack, tokens)
    return cases


async def _submit_by_the_web_form(stack: Stack, tokens: Tokens) -> dict[str, Any]:
    typed = {f"data.{name}": str(value) for name, value in VALID_DATA[WEB_FORM_PROCEDURE].items()}
    typed["data.project_description"] = f"Pose d'une véranda. {SAID}"
    typed.update({"applicant.name": NAME, "applicant.email": EMAIL, "applicant.phone": PHONE})
    typed["idempotency_key"] = str(uuid.uuid4())
    sent = await stack["intake"].post(f"/demarches/{WEB_FORM_PROCEDURE}", data=typed)
    assert sent.status_code == 303, sent.text
    receipt = await stack["intake"].get(sent.headers["location"])
    assert receipt.status_code == 200, receipt.text
    code = "-".join(re.findall(r'<span class="group">([0-9A-Z]+)</span>', receipt.text))
    case_id = urlsplit(sent.headers["location"]).path.rsplit("/", 1)[-1]
    opened = await _opened(stack, tokens, case_id)
    return {**opened, "case_id": case_id, "tracking_code": code, "receipt": receipt.text}


async def _submit_by_open311(stack: Stack, tokens: Tokens) -> dict[str, Any]:
    first, last = NAME.split(" ")
    form = {
        "api_key": OPEN311_KEY,
        "service_code": "eclairage",
        "address_string": "3 place du Marché",
        "description": f"Lampadaire éteint. {SAID}",
        "first_name": first,
        "last_name": last,
        "email": EMAIL,
        "phone": PHONE,
        "device_id": "phone-of-zephyrine",
    }
    sent = await stack["intake"].post("/open311/v2/requests.json", data=form)
    assert sent.status_code == 200, sent.text
    [answer] = sent.json()
    case_id = answer["service_request_id"]
    [row] = await query(
        stack.env.database_url,
        "SELECT tracking_code FROM intake.cases WHERE case_id = $1",
        uuid.UUID(case_id),
    )
    return {**await _opened(stack, tokens, case_id), "tracking_code": row["tracking_code"]}


async def _opened(stack: Stack, tokens: Tokens, case_id: str) -> dict[str, Any]:
    seen = await eventually(
        lambda: stack["workflow"].get(f"/v1/cases/{case_id}", headers=tokens("admin")),
        until=lambda r: r.status_code == 200,
    )
    assert seen.status_code == 200, seen.text
    return dict(seen.json())


async def _act(stack: Stack, agent: dict[str, str], case_id: str, action: str, **extra: Any) -> None:
    url = f"/v1/cases/{case_id}"
    version = (await stack["workflow"].get(url, headers=agent)).json()["version"]
    body = {"action": action, "expected_version": version, **extra}
    answer = await stack["workflow"].post(f"{url}/actions", headers=agent, json=body)
    assert answer.status_code == 200, f"{action}: {answer.text}"


async def _step_becomes(stack: Stack, agent: dict[str, str], case_id: str, step: str) -> None:
    seen = await eventually(
        lambda: stack["workflow"].get(f"/v1/cases/{case_id}", headers=agent),
        until=lambda r: r.json()["step"] == step,
    )
    assert seen.json()["step"] == step, seen.json()


async def _accepted(call: Any, *statuses: int) -> Any:
    """`call()`'s answer once it is one of `statuses` (intake learns of a decision from the bus)."""
    answer = await eventually(call, until=lambda r: r.status_code in statuses)
    assert answer.status_code in statuses, answer.text
    return answer


async def _move_cases_on(stack: Stack, tokens: Tokens, cases: dict[str, dict[str, Any]]) -> str:
    """Agents act, the citizen answers and rates; returns the note an agent wrote naming the citizen."""
    note = f"Appelé Mme {NAME} au 06 98 76 54 32 : le plan de masse manque."
    urbanisme = tokens("agent", "urbanisme", agent="claire")
    permit = cases["permis-construire"]
    for action in ("take", "start-check"):
        await _act(stack, urbanisme, permit["case_id"], action)
    await _act(stack, urbanisme, permit["case_id"], "request-documents", comment=note)
    reply = {"tracking_code": permit["tracking_code"], "message": f"Voici le plan. {SAID}"}
    assert (await stack["intake"].post("/v1/replies", json=reply)).status_code == 202
    await _step_becomes(stack, urbanisme, permit["case_id"], "completeness-check")
    for action in ("start-review", "accept"):
        await _act(stack, urbanisme, permit["case_id"], action, comment=f"Vu avec {NAME}.")
    rating = {"tracking_code": permit["tracking_code"], "rating": 5, "comment": f"Merci ! {SAID}"}
    await _accepted(lambda: stack["intake"].post("/v1/ratings", json=rating), 201)

    etat_civil = tokens("agent", "etat-civil", agent="paul")
    birth = cases["acte-naissance"]
    for action in ("start-search", "request-information"):
        await _act(stack, etat_civil, birth["case_id"], action)
    answer = {"code": birth["tracking_code"], "message": f"Je suis sa fille. {SAID}"}
    await _accepted(lambda: stack["tracking"].post("/suivi/reponse", data=answer), 200, 303)
    await _step_becomes(stack, etat_civil, birth["case_id"], "checking")
    await _act(stack, etat_civil, birth["case_id"], "send")
    rated = {"rating": "4", "comment": f"Rapide. {SAID}"}
    await _accepted(
        lambda: stack["tracking"].post(f"/suivi/{birth['tracking_code']}/avis", data=rated), 200, 303
    )

    voirie = tokens("agent", "voirie", agent="jules")
    report = cases["signalement-voirie"]
    for action in ("triage", "fix-at-once"):
        await _act(stack, voirie, report["case_id"], action)
    fixed = {"fixed": "fixed", "comment": f"Oui, réparé. {SAID}"}
    path = f"/suivi/{report['tracking_code']}/repare"
    await _accepted(lambda: stack["tracking"].post(path, data=fixed), 200, 303)
    await _act(stack, voirie, cases["open311"]["case_id"], "triage", comment=f"Rappeler {NAME}.")
    return note


async def _send_bad_input(stack: Stack, tokens: Tokens, cases: dict[str, dict[str, Any]]) -> None:
    """What a citizen gets wrong, personal data in it: refused, and the refusal logs none of it."""
    bad_email = make_case("permis-construire", applicant={**APPLICANT, "email": "zephyrine.q.123@@example"})
    bad_phone = make_case("permis-construire", applicant={**APPLICANT, "phone": "+33 6 98 76 54 32 1"})
    too_long = make_case("signalement-voirie", applicant=APPLICANT, description=SAID * 200)
    intake, tracking = stack["intake"], stack["tracking"]
    for body in (bad_email, bad_phone, too_long):
        assert (await intake.post("/v1/cases", json=body)).status_code == 422
    broken = json.dumps(bad_email)[:-2].encode()  # not JSON any more
    sent = await intake.post("/v1/cases", content=broken, headers={"Content-Type": "application/json"})
    assert sent.status_code == 400
    typed = {"data.parcel_address": "1 rue X", "applicant.name": NAME, "applicant.phone": "06 98 76 54 32 1"}
    assert (await intake.post(f"/demarches/{WEB_FORM_PROCEDURE}", data=typed)).status_code == 422
    nobody = {"tracking_code": "ZZZZ-ZZZZ-ZZZZ-ZZZZ-Z", "message": SAID}
    assert (await intake.post("/v1/replies", json=nobody)).status_code in (404, 422)
    answer = {"code": "ZZZZ-ZZZZ-ZZZZ-ZZZZ-Z", "message": SAID}
    assert (await tracking.post("/suivi/reponse", data=answer)).status_code in (404, 422)
    first, last = NAME.split(" ")
    no_service = {"api_key": OPEN311_KEY, "first_name": first, "last_name": last, "email": EMAIL}
    assert (await intake.post("/open311/v2/requests.json", data=no_service)).status_code == 400
    stale = {"action": "take", "expected_version": 1, "comment": f"Mme {NAME}, 06 98 76 54 32"}
    permit = cases["permis-construire"]["case_id"]
    agent = tokens("agent", "urbanisme")
    assert (
        await stack["workflow"].post(f"/v1/cases/{permit}/actions", headers=agent, json=stale)
    ).status_code == 409


async def _settle(stack: Stack) -> None:
    """Until every consumer of the stream has taken every message, notify has sent every message and
    webhook it had to, and the stream stops growing."""
    nc = await nats.connect(stack.env.nats_url)
    js = nc.jetstream()

    async def state() -> tuple[int, bool]:
        last = (await js.stream_info(STREAM)).state.last_seq
        consumers = await js.consumers_info(STREAM)
        caught_up = all(c.num_pending == 0 and c.num_ack_pending == 0 for c in consumers)
        [work] = await query(
            stack.env.database_url,
            "SELECT (SELECT count(*) FROM notify.notifications WHERE state = 'pending') "
            "+ (SELECT count(*) FROM notify.messages WHERE status IN ('created', 'sending', "
            "'temporary-failure')) + (SELECT count(*) FROM notify.webhook_deliveries "
            "WHERE status = 'pending') AS left",
        )
        return last, caught_up and work["left"] == 0

    try:
        previous = (-1, False)
        for _ in range(300):
            now = await state()
            if now[1] and now == previous:
                return
            previous = now
            await asyncio.sleep(0.3)
        raise AssertionError(f"the services did not settle: {previous}")
    finally:
        await nc.close()


# --- Reading every surface ---------------------------------------------------------------------------


async def _texts(stack: Stack, service: str, *paths: str) -> list[str]:
    texts = []
    for path in paths:
        answer = await stack[service].get(path)
        assert answer.status_code == 200, f"{service} {path}: {answer.status_code} {answer.text[:300]}"
        texts.append(answer.text)
    return texts


async def _tracking(stack: Stack, scenario: Scenario) -> Surface:
    paths = []
    for code in scenario.codes:
        paths += [
            f"/v1/track/{code}",
            f"/suivi/{code}?lang=fr",
            f"/suivi/{code}?lang=en",
            f"/suivi?code={code}",
        ]
    reports = [scenario.cases["signalement-voirie"]["case_id"], scenario.cases["open311"]["case_id"]]
    for case_id in reports:
        paths += [f"/signalements/{case_id}", f"/open311/v2/requests/{case_id}.json"]
        paths.append(f"/open311/v2/requests/{case_id}.xml")
    paths += ["/open311/v2/requests.json", "/open311/v2/requests.xml", "/"]
    return Surface(
        "tracking's public answers", await _texts(stack, "tracking", *paths), [*scenario.codes, *reports]
    )


async def _stats(stack: Stack) -> Surface:
    codes = stack.apps["stats"].state.catalogue.codes()
    index = (await stack["stats"].get("/v1/stats/open-data/")).json()
    paths = [
        "/v1/stats/procedures",
        "/v1/stats/open-data/",
        "/statistiques",
        "/",
        "/statistiques/signalements",
    ]
    paths += [f"/v1/stats/procedures/{code}" for code in codes]
    paths += [file["url"] for file in index["files"]] + [index["datapackage"]]
    report = "/v1/stats/reports/signalement-voirie"
    paths += [
        report,
        f"{report}/signalements.csv",
        f"{report}/quartiers.geojson",
        f"{report}/datapackage.json",
    ]
    return Surface("stats' public answers", await _texts(stack, "stats", *paths), list(codes))


async def _intake(stack: Stack, scenario: Scenario) -> Surface:
    codes = stack.apps["intake"].state.catalogue.codes()
    paths = ["/v1/procedures", "/demarches", "/open311/v2/services.json", "/open311/v2/services.xml"]
    paths += [f"/v1/procedures/{code}" for code in codes] + [f"/demarches/{code}" for code in codes]
    paths += ["/open311/v2/services/eclairage.json", "/v1/reports/nearby?procedure=signalement-voirie"
              "&category=eclairage&address=3%20place%20du%20March%C3%A9"]  # fmt: skip
    texts = await _texts(stack, "intake", *paths) + [scenario.cases[WEB_FORM_PROCEDURE]["receipt"]]
    return Surface(
        "intake's public answers and receipt", texts, [*codes, scenario.cases["open311"]["case_id"]]
    )


async def _other_services_tables(stack: Stack, scenario: Scenario) -> dict[str, Surface]:
    """Every row of every table of workflow, tracking, stats and notify; workflow's notes aside: the
    agents' own free text, for the agents (`test_the_agents_notes_stay_in_workflow`)."""
    read = {}
    for schema in ("workflow", "tracking", "stats", "notify"):
        proof = [] if schema == "stats" else scenario.ids  # stats keeps counts, not cases
        skip = ("notes",) if schema == "workflow" else ()
        read[f"{schema}-tables"] = await tables(stack.env.database_url, schema, proof=proof, skip=skip)
    return read


def _mails(stack: Stack) -> Surface:
    """Every e-mail, but for its `To:` (where the address must be) and the test server's own headers."""
    surface = Surface("e-mails")
    for message in stack.smtp.messages():
        assert message["To"] == EMAIL, message["To"]
        headers = [
            f"{k}: {v}"
            for k, v in message.items()
            if k.lower() not in (*ALLOWED_MAIL_HEADERS, *SMTP_SERVER_HEADERS)
        ]
        bodies = [str(part.get_content()) for part in message.walk() if not part.is_multipart()]
        surface.texts.append("\n".join(headers + bodies))
    return surface


def _sms(stack: Stack) -> Surface:
    surface = Surface("SMS")
    for path in sorted(stack.sms_dir.glob("*.json")):
        sent = json.loads(path.read_text(encoding="utf-8"))
        assert sent["to"] == STORED_PHONE, sent
        surface.texts.append(json.dumps({k: v for k, v in sent.items() if k != "to"}, ensure_ascii=False))
    return surface


@pytest.fixture(scope="module")
async def surfaces(scenario: Scenario, stack: Stack) -> dict[str, Surface]:
    read = {
        "bus": Surface("NATS messages as sent", [m.decode(errors="replace") for m in scenario.bus], scenario.ids),
        **await streams(stack.env.nats_url),
        "tracking": await _tracking(stack, scenario),
        "stats": await _stats(stack),
        "intake": await _intake(stack, scenario),
        "webhooks": Surface(
            "webhooks",
            [f"{r.path} {r.headers!r} {r.body.decode(errors='replace')}" for r in scenario.receiver.requests],
            scenario.ids,
        ),
        "logs": Surface("log records", [log_text(r) for r in scenario.logs], scenario.ids),
        "spans": Surface(
            "spans",
            [f"{s.name} {dict(s.attributes or {})} {[e.attributes for e in s.events]}" for s in _exporter.get_finished_spans()],
            scenario.ids,
        ),
        **await _other_services_tables(stack, scenario),
        "mails": _mails(stack),
        "sms": _sms(stack),
        "postgresql": Surface("PostgreSQL's log", [(stack.env.pg.data / "server.log").read_text(errors="replace")]),
    }  # fmt: skip
    read["CASES"].proof = scenario.ids
    return read


# --- The checks --------------------------------------------------------------------------------------


def test_every_surface_was_read_and_holds_what_proves_it(surfaces: dict[str, Surface]) -> None:
    for surface in surfaces.values():
        assert surface.texts and any(t.strip() for t in surface.texts), f"{surface.name}: nothing was read"
        assert surface.unproven() == [], f"{surface.name} lacks {surface.unproven()}: was it read at all?"
    assert "CASES" in surfaces


def test_no_personal_data_anywhere_but_where_it_must_be(surfaces: dict[str, Surface]) -> None:
    leaks = sorted({where for surface in surfaces.values() for _, where in surface.found(PRIVATE)})
    assert leaks == [], "\n".join(leaks[:40])


def test_the_citizen_got_mail_and_sms_at_the_addresses_they_gave(
    surfaces: dict[str, Surface], scenario: Scenario
) -> None:
    mails = "\n".join(surfaces["mails"].texts)
    assert len(surfaces["mails"].texts) >= len(scenario.cases) + 2  # receipts, a request, decisions
    assert all(code in mails for code in scenario.codes), "each case's receipt names its code"
    assert len(surfaces["sms"].texts) >= 1


async def test_the_search_finds_every_kind_of_personal_data_where_it_is(stack: Stack) -> None:
    """No blind search: run on intake's own tables, it finds all that the scenario typed, every free text
    included (the replies, ratings and fix check sent by API and by the web pages did arrive)."""
    tables = ("applicants", "cases", "replies", "ratings", "fix_checks")
    rows = Surface("intake's tables")
    for table in tables:
        found = await query(stack.env.database_url, f"SELECT t::text AS row FROM intake.{table} t")
        rows.texts += [f"{table}: {r['row']}" for r in found]
    assert {what for what, _ in rows.found(PRIVATE)} == set(PRIVATE)
    said = {table: sum(NAME in t for t in rows.texts if t.startswith(f"{table}:")) for table in tables}
    assert said == {"applicants": 6, "cases": 4, "replies": 2, "ratings": 2, "fix_checks": 1}, said


async def test_intake_keeps_what_the_citizen_gave(stack: Stack, scenario: Scenario) -> None:
    applicants = await query(
        stack.env.database_url,
        "SELECT case_id::text AS case_id, name, email, phone FROM intake.applicants WHERE case_id = ANY($1)",
        [uuid.UUID(i) for i in scenario.ids],
    )
    assert {r["case_id"] for r in applicants} == set(scenario.ids)
    assert {(r["name"], r["email"], r["phone"]) for r in applicants} == {(NAME, EMAIL, STORED_PHONE)}
    [birth] = await query(
        stack.env.database_url,
        "SELECT data::text AS data FROM intake.cases WHERE case_id = $1",
        uuid.UUID(scenario.cases["acte-naissance"]["case_id"]),
    )
    assert "Ombeline" in birth["data"] and "Wolframine" in birth["data"]


async def test_an_agent_of_the_case_sees_the_applicant_and_nobody_else_does(
    stack: Stack, scenario: Scenario, module_tokens: Tokens
) -> None:
    permit = scenario.cases["permis-construire"]["case_id"]
    seen = await stack["workflow"].get(f"/v1/cases/{permit}", headers=module_tokens("agent", "urbanisme"))
    assert seen.status_code == 200, seen.text
    applicant = seen.json()["applicant"]
    assert (applicant["name"], applicant["email"], applicant["phone"]) == (NAME, EMAIL, STORED_PHONE)
    assert scenario.agent_note in [h["comment"] for h in seen.json()["history"]]
    for headers in ({}, module_tokens("agent", "etat-civil")):
        refused = await stack["workflow"].get(f"/v1/cases/{permit}", headers=headers)
        assert refused.status_code in (401, 403), refused.text
        assert list(Surface("a refused case view", [refused.text]).found(PRIVATE)) == []


async def test_the_agents_notes_stay_in_workflow(stack: Stack, scenario: Scenario) -> None:
    notes = await query(
        stack.env.database_url, "SELECT comment FROM workflow.notes WHERE comment IS NOT NULL"
    )
    assert scenario.agent_note in [n["comment"] for n in notes]
