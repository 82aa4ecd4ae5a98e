"""stats folds street reports into exact figures per category × district × month: a known history
(published straight to JetStream, as intake's and workflow's relays would) gives known numbers, a
reopened report counts as done once, small figures are suppressed, and a redelivery changes nothing.

The history (`street_history`) starts four months before the month under way (M0), so that the page's
last 12 months hold it all:
- centre, eclairage: 10 reports in M0, done after 3, 5, ..., 17 days (M0) and 35 and 40 days (M1, past
  the 30 days of the commitment); the first is reopened by its reporter ("not fixed") and done again;
  seven reporters answer in M1 (six "fixed"), the reopened one again in M2 ("fixed");
- nord, nid-de-poule: 3 reports transferred; sud, proprete: 6 reports, 2 rejected, 1 duplicate, 3 open;
- est, graffiti: 5 reports still new; ouest: 1 report of version 1, resolved after 4 days.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import nats
import pytest
from nats.js import JetStreamContext

from services.stats import domain
from services.stats.app import create_app as create_stats
from services.stats.rebuild import rebuild
from shared import tracking_code
from shared.events import STREAM, EventData, make_envelope, parse, subject_for
from shared.events.intake import CaseImported, CaseSubmitted, FixChecked, TimelineEntry
from shared.events.workflow import Actor, CaseOpened, FixCheckDue, StepChanged
from shared.i18n import catalogues
from shared.procedures import CITY_TIMEZONE
from tests.conftest import Env, _client, stats_settings
from tests.waiting import eventually, query, scalar

PROCEDURE = "signalement-voirie"
API = f"/v1/stats/reports/{PROCEDURE}"
DAY = timedelta(days=1)
CENTRE_DAYS = [3, 5, 7, 9, 11, 13, 15, 17, 35, 40]


def months_ago(n: int, now: datetime | None = None) -> date:
    month = domain.month_of(now or datetime.now(UTC))
    for _ in range(n):
        month = domain.previous_month(month)
    return month


M0, M1, M2 = months_ago(4), months_ago(3), months_ago(2)


def text(month: date) -> str:
    return f"{month:%Y-%m}"


def anchor() -> datetime:
    """M0's second day, 09:00 city time (in UTC, so that adding days adds real time)."""
    return datetime.combine(M0.replace(day=2), time(9), tzinfo=CITY_TIMEZONE).astimezone(UTC)


@dataclass
class Move:
    after: timedelta
    to: str
    outcome: str | None = None
    actor: Actor = "agent"
    action: str | None = None
    duplicate_of: uuid.UUID | None = None


class Report:
    """One street report's events, numbered as workflow numbers them."""

    def __init__(
        self, submitted: datetime, *, category: str, district: str, version: int = 2, first: str = "new"
    ) -> None:
        self.case_id, self.submitted, self.version = uuid.uuid4(), submitted, 0
        self.category, self.district, self.procedure_version = category, district, version
        self.step, self.first = first, first
        self.deadline = (submitted.astimezone(CITY_TIMEZONE) + 30 * DAY).date()
        self.done_version: int | None = None

    def submitted_events(self) -> list[EventData]:
        facts: dict[str, str | int | float | bool | None] = {
            "category": self.category,
            "district": self.district,
        }
        if self.procedure_version == 2:
            facts["cell"] = "8a1f96a1a0a7fff"
        self.version = 1
        return [
            CaseSubmitted(
                case_id=self.case_id,
                tracking_code_digest=tracking_code.digest(tracking_code.generate()),
                procedure=PROCEDURE,
                procedure_version=self.procedure_version,
                service="voirie",
                channel="web",
                language="fr",
                submitted_at=self.submitted,
                legal_deadline=self.deadline,
                first_step=self.first,
                facts=facts,
            ),
            CaseOpened(
                case_id=self.case_id,
                version=1,
                procedure=PROCEDURE,
                procedure_version=self.procedure_version,
                service="voirie",
                step=self.first,
                legal_deadline=self.deadline,
                opened_at=self.submitted,
                submitted_at=self.submitted,
            ),
        ]

    def move(self, m: Move) -> StepChanged:
        self.version += 1
        event = StepChanged(
            case_id=self.case_id,
            version=self.version,
            action=m.action or f"to-{m.to}",
            from_step=self.step,
            to_step=m.to,
            actor=m.actor,
            by=None if m.actor == "citizen" else "agent-1",
            at=self.submitted + m.after,
            clock_paused=False,
            legal_deadline=self.deadline,
            outcome=m.outcome,
            duplicate_of=m.duplicate_of,
        )
        self.step = m.to
        if m.outcome == "accepted":
            self.done_version = self.version
        return event

    def asked(self, after: timedelta) -> FixCheckDue:
        self.version += 1
        assert self.done_version is not None
        return FixCheckDue(
            case_id=self.case_id,
            version=self.version,
            step=self.step,
            done_version=self.done_version,
            done_at=self.submitted,
            at=self.submitted + after,
        )

    def answered(self, after: timedelta, *, fixed: bool) -> FixChecked:
        assert self.done_version is not None
        return FixChecked(
            case_id=self.case_id,
            fixed=fixed,
            checked_at=self.submitted + after,
            done_version=self.done_version,
        )


def done_after(report: Report, days: int) -> list[EventData]:
    return [
        report.move(Move(DAY / 2, "to-qualify")),
        report.move(Move(DAY, "scheduled")),
        report.move(Move(days * DAY, "done", "accepted", action="resolve")),
    ]


def street_history() -> list[EventData]:
    start, events = anchor(), []
    for i, days in enumerate(CENTRE_DAYS):
        r = Report(start + i * 6 * timedelta(hours=1), category="eclairage", district="centre")
        events += [*r.submitted_events(), *done_after(r, days)]
        if i == 0:  # not fixed: reopened, done again, fixed this time
            events += [
                r.asked((days + 28) * DAY),
                r.answered((days + 29) * DAY, fixed=False),
                r.move(Move((days + 29) * DAY, "to-qualify", actor="citizen", action="reopen")),
                r.move(Move((days + 30) * DAY, "scheduled")),
                r.move(Move(45 * DAY, "done", "accepted", action="resolve")),
                r.asked(73 * DAY),
                r.answered(74 * DAY, fixed=True),
            ]
        elif i <= 6:
            events += [r.asked((days + 28) * DAY), r.answered((days + 29) * DAY, fixed=True)]
    for i in range(3):
        r = Report(start + i * DAY, category="nid-de-poule", district="nord")
        events += [*r.submitted_events(), r.move(Move(2 * DAY, "transferred", "closed", action="transfer"))]
    kept: Report | None = None
    for i in range(6):
        r = Report(start + i * DAY, category="proprete", district="sud")
        events += r.submitted_events()
        if i < 2:
            events += [
                r.move(Move(DAY, "to-qualify")),
                r.move(Move(3 * DAY, "rejected", "rejected", action="reject")),
            ]
        elif i == 2:
            assert kept is None
            kept = r
            events.append(r.move(Move(DAY, "to-qualify")))
        elif i == 3:
            assert kept is not None
            events.append(
                r.move(Move(DAY, "duplicate", "closed", action="mark-duplicate", duplicate_of=kept.case_id))
            )
        else:
            events.append(r.move(Move(DAY, "to-qualify")))
    for i in range(5):
        events += Report(start + i * DAY, category="graffiti", district="est").submitted_events()
    old = Report(start, category="eclairage", district="ouest", version=1, first="received")
    events += [*old.submitted_events(), old.move(Move(4 * DAY, "resolved", "accepted", action="resolve"))]
    return events


Message = tuple[str, bytes]


def messages(events: list[EventData]) -> list[Message]:
    """Each event as a relay publishes it: its subject, and its envelope (with an id of its own)."""
    out = []
    for event in events:
        case_id = event.case_id  # type: ignore[attr-defined]
        envelope = make_envelope(event, case_id=case_id, procedure=PROCEDURE)
        out.append(
            (
                subject_for(procedure=PROCEDURE, case_id=case_id, event=event),
                envelope.model_dump_json().encode(),
            )
        )
    return out


async def send(js: JetStreamContext, sent: list[Message]) -> list[int]:
    return [(await js.publish(subject, body, stream=STREAM)).seq for subject, body in sent]


async def publish(js: JetStreamContext, events: list[EventData]) -> list[int]:
    return await send(js, messages(events))


@pytest.fixture
async def js(stats: httpx.AsyncClient, env: Env) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(env.nats_url)
    yield nc.jetstream()
    await nc.close()


async def settled(env: Env, seq: int) -> None:
    await eventually(
        lambda: scalar(env.database_url, "SELECT max(stream_seq) FROM stats.consumer_positions"),
        until=lambda reached: reached is not None and reached >= seq,
        timeout=60,
    )


async def history(js: JetStreamContext, env: Env) -> list[Message]:
    sent = messages(street_history())
    await settled(env, (await send(js, sent))[-1])
    return sent


async def figures(stats: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    answer = await stats.get(API, params={"from": text(M0), "to": text(M2), **params})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def row(body: dict[str, Any], month: date, category: str, district: str) -> dict[str, Any]:
    found = [
        r
        for r in body["rows"]
        if (r["month"], r["category"], r["district"]) == (text(month), category, district)
    ]
    assert len(found) == 1, found
    figures_: dict[str, Any] = found[0]["figures"]
    return figures_


def place(body: dict[str, Any], kind: str, code: str) -> dict[str, Any]:
    return next(p for p in body[kind] if p["code"] == code)


def count(n: int | None) -> dict[str, Any]:
    return {"n": n, "suppressed": n is None}


WITHHELD = {"n": None, "suppressed": True}


async def test_counts_per_category_district_and_month_each_in_its_own_month(
    stats: httpx.AsyncClient, js: JetStreamContext, env: Env
) -> None:
    await history(js, env)
    body = await figures(stats)

    assert [s["code"] for s in body["final_steps"]] == [
        "done",
        "transferred",
        "rejected",
        "duplicate",
        "resolved",
        "forwarded",
        "unfounded",
    ]
    march = row(body, M0, "eclairage", "centre")
    assert march["received"] == count(10)
    assert march["final"]["done"] == count(8) and march["final"]["transferred"] == count(0)
    april = row(body, M1, "eclairage", "centre")
    # Done twice, the reopened report counts once, in the month of its first "done".
    assert april["received"] == count(0) and april["final"]["done"] == WITHHELD
    assert april["time_to_done"] == {"n": None, "suppressed": True, "p50_days": None, "p90_days": None}

    centre = place(body, "districts", "centre")["figures"]
    assert centre["received"] == count(10) and centre["final"]["done"] == count(10)
    sud = place(body, "districts", "sud")
    assert sud["figures"]["received"] == count(6)
    assert (
        sud["figures"]["final"]["rejected"] == WITHHELD and sud["figures"]["final"]["duplicate"] == WITHHELD
    )
    nord = place(body, "districts", "nord")["figures"]
    assert nord["received"] == WITHHELD and nord["final"]["transferred"] == WITHHELD
    ouest = place(body, "districts", "ouest")["figures"]
    assert ouest["received"] == WITHHELD and ouest["final"]["resolved"] == WITHHELD
    assert body["total"]["received"] == count(25)
    assert body["total"]["final"]["done"] == count(10)
    assert body["total"]["final"]["resolved"] == WITHHELD  # one report of version 1
    # A month with nothing of a category and district has no row.
    assert not [r for r in body["rows"] if r["district"] == "est" and r["month"] != text(M0)]


async def test_time_to_done_runs_to_the_first_done_and_its_percentiles_are_exact(
    stats: httpx.AsyncClient, js: JetStreamContext, env: Env
) -> None:
    await history(js, env)
    body = await figures(stats)
    march = row(body, M0, "eclairage", "centre")
    # 3, 5, ..., 17 days (plus the half day and day of triage and scheduling, not counted apart):
    # exactly the days after submission the report was done.
    assert march["time_to_done"] == {"n": 8, "suppressed": False, "p50_days": 9.0, "p90_days": 15.0}
    assert march["done_within_commitment"] == {"n": 8, "suppressed": False, "share": 1.0}
    centre = place(body, "districts", "centre")["figures"]
    # The reopened report's time runs to its first "done" (3 days), not to the second (45 days).
    assert centre["time_to_done"] == {"n": 10, "suppressed": False, "p50_days": 11.0, "p90_days": 35.0}
    assert centre["done_within_commitment"] == {"n": 10, "suppressed": False, "share": 0.8}
    est = place(body, "districts", "est")["figures"]
    assert est["time_to_done"] == {"n": 0, "suppressed": False, "p50_days": None, "p90_days": None}


async def test_the_reporters_answers_count_in_the_month_given(
    stats: httpx.AsyncClient, js: JetStreamContext, env: Env
) -> None:
    await history(js, env)
    body = await figures(stats)
    assert row(body, M1, "eclairage", "centre")["confirmed_fixed"] == {
        "n": 7,
        "suppressed": False,
        "share": round(6 / 7, 4),
    }
    assert row(body, M2, "eclairage", "centre")["confirmed_fixed"] == {
        "n": None,
        "suppressed": True,
        "share": None,
    }
    assert place(body, "districts", "centre")["figures"]["confirmed_fixed"] == {
        "n": 8,
        "suppressed": False,
        "share": 0.875,
    }


async def test_open_reports_are_aged_now_and_a_reopened_one_done_again_is_not_open(
    stats: httpx.AsyncClient, js: JetStreamContext, env: Env
) -> None:
    await history(js, env)
    body = await figures(stats)
    est = place(body, "districts", "est")["open_now"]
    ages = [(datetime.now(UTC) - (anchor() + i * DAY)) / DAY for i in range(5)]
    assert est["open"] == count(5)
    assert est["age"]["n"] == 5
    assert est["age"]["p50_days"] == pytest.approx(sorted(ages)[2], abs=0.02)
    assert est["age"]["p90_days"] == pytest.approx(sorted(ages)[3], abs=0.02)
    assert place(body, "districts", "centre")["open_now"]["open"] == count(0)
    assert place(body, "districts", "sud")["open_now"]["open"] == WITHHELD  # 3 of them
    assert body["open_now"]["open"] == count(8)
    # Open now whatever the period asked.
    later = await stats.get(API, params={"from": text(M2), "to": text(M2)})
    assert later.json()["open_now"]["open"] == count(8)


async def test_filters_by_category_and_district_and_months(
    stats: httpx.AsyncClient, js: JetStreamContext, env: Env
) -> None:
    await history(js, env)
    lighting = await figures(stats, category="eclairage")
    assert lighting["category"] == "eclairage" and lighting["total"]["received"] == count(11)
    assert {r["category"] for r in lighting["rows"]} == {"eclairage"}
    centre = await figures(stats, district="centre")
    assert centre["total"]["received"] == count(10) and {r["district"] for r in centre["rows"]} == {"centre"}
    april = (await stats.get(API, params={"from": text(M1), "to": text(M1)})).json()
    assert april["total"]["received"] == count(0)
    assert april["total"]["final"]["done"] == WITHHELD  # the two done late
    assert april["total"]["confirmed_fixed"]["n"] == 7


async def test_a_redelivery_changes_nothing(stats: httpx.AsyncClient, js: JetStreamContext, env: Env) -> None:
    sent = await history(js, env)
    before = await figures(stats)
    tables = (
        "SELECT (SELECT count(*) FROM stats.reports), (SELECT count(*) FROM stats.report_finals), "
        "(SELECT count(*) FROM stats.report_fix_checks)"
    )
    counted = await query(env.database_url, tables)
    # Every message again, as a redelivery or a relay republishing after the duplicate window would...
    await settled(env, (await send(js, sent))[-1])
    assert await figures(stats) == before
    # ... and every event again under new ids (a producer that appended it twice by mistake).
    again = [parse(body)[1] for _, body in sent]
    await settled(env, (await publish(js, again))[-1])
    assert await figures(stats) == before
    assert await query(env.database_url, tables) == counted
    assert await query(env.database_url, "SELECT * FROM stats.dead_letters") == []


async def test_an_answer_before_its_report_is_folded_waits_for_it(
    stats: httpx.AsyncClient, js: JetStreamContext, env: Env
) -> None:
    r = Report(anchor(), category="arbre", district="nord")
    events = [*r.submitted_events(), *done_after(r, 2)]
    answer = r.answered(30 * DAY, fixed=True)
    await publish(js, [answer])
    await settled(env, (await publish(js, events))[-1])
    await eventually(
        lambda: scalar(env.database_url, "SELECT count(*) FROM stats.report_fix_checks"),
        until=lambda n: n == 1,
    )
    assert await scalar(env.database_url, "SELECT fixed FROM stats.report_fix_checks") is True


async def test_other_procedures_are_not_reports(stats: httpx.AsyncClient) -> None:
    permit = await stats.get("/v1/stats/reports/permis-construire", params={"lang": "en"})
    assert permit.status_code == 404
    assert (
        "signalement-voirie" in permit.json()["detail"]
        and "not a reporting procedure" in permit.json()["detail"]
    )
    unknown = await stats.get("/v1/stats/reports/nope", params={"lang": "en"})
    assert unknown.status_code == 404 and "There is no procedure" in unknown.json()["detail"]


async def test_bad_parameters_are_a_clear_4xx_in_the_readers_language(stats: httpx.AsyncClient) -> None:
    bad_category = await stats.get(API, params={"category": "ovni", "lang": "en"})
    assert bad_category.status_code == 422 and 'There is no category "ovni"' in bad_category.json()["detail"]
    assert "eclairage" in bad_category.json()["detail"]
    bad_district = await stats.get(API, params={"district": "lune"})
    assert (
        bad_district.status_code == 422
        and "Il n'y a pas de quartier « lune »" in bad_district.json()["detail"]
    )
    backwards = await stats.get(API, params={"from": "2026-05", "to": "2026-03", "lang": "en"})
    assert (
        backwards.status_code == 422
        and "ends (2026-03) before it starts (2026-05)" in backwards.json()["detail"]
    )
    bad_month = await stats.get(API, params={"from": "2026-13"})
    assert bad_month.status_code == 422 and bad_month.json()["errors"][0]["field"] == "from"
    long = await stats.get(API, params={"category": "x" * 500})
    assert long.status_code == 422


def test_every_reports_text_is_in_every_language() -> None:
    found = catalogues()
    keys = {k for k in found["fr"] if k.startswith(("reports.", "stats.reports."))}
    assert len(keys) > 60
    for lang in ("en", "ar"):
        assert keys <= set(found[lang]), sorted(keys - set(found[lang]))
    plural_forms = ("zero", "two", "few", "many")
    assert keys | {k for k in found["ar"] if k.rsplit(".", 1)[-1] in plural_forms} >= {
        k for k in found["ar"] if k.startswith(("reports.", "stats.reports."))
    }


async def test_a_rebuild_folds_the_same_figures_again(
    stats: httpx.AsyncClient, js: JetStreamContext, env: Env
) -> None:
    sent = await history(js, env)
    before = await figures(stats)
    await rebuild(stats_settings(env))
    assert await scalar(env.database_url, "SELECT count(*) FROM stats.reports") == 0
    async for rebuilt in _client(create_stats(stats_settings(env))):
        await settled(env, len(sent))
        assert await figures(rebuilt) == before


def imported(n: int, *, outcome: str | None, decided_after_days: float = 4.0) -> CaseImported:
    """A past report of the city's former system: submitted on M0's second day, decided (or not)."""
    submitted = anchor()
    timeline = [TimelineEntry(at=submitted, event="submitted")]
    if outcome is not None:
        at = submitted + timedelta(days=decided_after_days)
        timeline.append(TimelineEntry(at=at, event="decided", outcome=outcome))  # type: ignore[arg-type]
    return CaseImported(
        case_id=uuid.uuid5(uuid.NAMESPACE_URL, f"imported/{n}"),
        procedure=PROCEDURE,
        procedure_version=2,
        service="proprete",
        channel="phone",
        legal_deadline=None,
        facts={"category": "depot-sauvage", "district": "nord"},
        timeline=tuple(timeline),
    )


async def test_past_reports_imported_count_in_the_final_step_their_outcome_names(
    stats: httpx.AsyncClient, js: JetStreamContext, env: Env
) -> None:
    """Accepted counts as done (time to done from its timeline), rejected as rejected; a withdrawn report
    is closed but in no step's count; one without a decision is open."""
    past = [imported(i, outcome="accepted", decided_after_days=2 + 2 * i) for i in range(6)]
    past += [imported(10 + i, outcome="rejected") for i in range(5)]
    past += [imported(20, outcome="withdrawn"), imported(21, outcome=None)]
    sent = messages(past)
    await settled(env, (await send(js, sent))[-1])
    await send(js, sent)  # the same messages again: nothing changes
    await settled(env, (await send(js, messages(past[:1])))[-1])
    body = await figures(stats)
    march = row(body, M0, "depot-sauvage", "nord")
    assert march["received"] == count(13)
    assert march["final"]["done"] == count(6) and march["final"]["rejected"] == count(5)
    assert march["time_to_done"] == {"n": 6, "suppressed": False, "p50_days": 6.0, "p90_days": 10.0}
    assert march["done_within_commitment"] == {"n": 6, "suppressed": False, "share": 1.0}
    open_now = await query(
        env.database_url,
        "SELECT count(*) AS n FROM stats.reports WHERE final_step IS NULL AND category = $1",
        "depot-sauvage",
    )
    assert open_now[0]["n"] == 1
