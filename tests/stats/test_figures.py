"""stats folds a history with known durations into the exact figures it should publish.

The history is made here and published straight to JetStream, as intake's and workflow's relays would.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import nats
import pytest
from nats.js import JetStreamContext

from services.stats.app import create_app as create_stats
from services.stats.rebuild import rebuild
from shared import tracking_code
from shared.events import STREAM, EventData, make_envelope, subject_for
from shared.events.intake import CaseRated, CaseSubmitted
from shared.events.workflow import CaseOpened, StepChanged
from shared.procedures import CITY_TIMEZONE
from tests.conftest import Env, _client, stats_settings
from tests.stats.test_domain import exact_quantile
from tests.waiting import eventually, query, scalar

PROCEDURE = "permis-construire"
DAY = timedelta(days=1)


def at(text: str) -> datetime:
    """A city-time instant, in UTC so that adding days adds real time (March has a DST change)."""
    return datetime.fromisoformat(text).replace(tzinfo=CITY_TIMEZONE).astimezone(UTC)


class Case:
    """One case's events, numbered as workflow numbers them."""

    def __init__(self, submitted: datetime, *, district: str = "centre", channel: str = "web") -> None:
        self.case_id, self.submitted, self.version = uuid.uuid4(), submitted, 0
        self.step, self.district, self.channel = "received", district, channel
        self.deadline = (submitted + 90 * DAY).date()

    def events(self, *moves: tuple[timedelta, str, str | None, bool]) -> list[EventData]:
        """(time since submission, step reached, outcome, clock paused) for each move."""
        out: list[EventData] = [
            CaseSubmitted(
                case_id=self.case_id,
                tracking_code_digest=tracking_code.digest(tracking_code.generate()),
                procedure=PROCEDURE,
                procedure_version=1,
                service="urbanisme",
                channel=self.channel,  # type: ignore[arg-type]
                language="fr",
                submitted_at=self.submitted,
                legal_deadline=self.deadline,
                first_step="received",
                facts={"district": self.district},
            ),
            CaseOpened(
                case_id=self.case_id,
                version=1,
                procedure=PROCEDURE,
                procedure_version=1,
                service="urbanisme",
                step="received",
                legal_deadline=self.deadline,
                opened_at=self.submitted,
            ),
        ]
        for version, (after, step, outcome, paused) in enumerate(moves, start=2):
            out.append(
                StepChanged(
                    case_id=self.case_id,
                    version=version,
                    action=f"to-{step}",
                    from_step=self.step,
                    to_step=step,
                    actor="agent",
                    by="agent-1",
                    at=self.submitted + after,
                    clock_paused=paused,
                    legal_deadline=self.deadline,
                    outcome=outcome,
                )
            )
            self.step = step
        return out


async def publish(js: JetStreamContext, events: list[EventData]) -> list[int]:
    seqs = []
    for event in events:
        case_id = event.case_id  # type: ignore[attr-defined]
        envelope = make_envelope(event, case_id=case_id, procedure=PROCEDURE)
        subject = subject_for(procedure=PROCEDURE, case_id=case_id, event=event)
        seqs.append((await js.publish(subject, envelope.model_dump_json().encode(), stream=STREAM)).seq)
    return seqs


@pytest.fixture
async def js(stats: httpx.AsyncClient, env: Env) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(env.nats_url)
    yield nc.jetstream()
    await nc.close()


def march_history() -> tuple[list[EventData], list[float], list[float]]:
    """20 permits submitted in early March 2026 and decided in March or April, 8 of them after waiting
    `k` days for documents; returns the events and the exact elapsed and legal durations in days."""
    events: list[EventData] = []
    elapsed, legal = [], []
    for i in range(20):
        case = Case(at("2026-03-02T09:00") + i * timedelta(hours=5), district="est" if i < 3 else "centre")
        decided_after, waited = (10 + 2 * i) * DAY, (i % 5) * DAY if i % 5 in (1, 2) or i > 15 else 0 * DAY
        moves = [(DAY, "completeness-check", None, False)]
        if waited:
            moves += [
                (2 * DAY, "documents-requested", None, True),
                (2 * DAY + waited, "completeness-check", None, False),
            ]
        moves += [
            (3 * DAY + waited, "review", None, False),
            (decided_after, "accepted" if i % 4 else "rejected", "accepted" if i % 4 else "rejected", False),
        ]
        events += case.events(*moves)
        elapsed.append(decided_after / DAY)
        legal.append((decided_after - waited) / DAY)
    return events, elapsed, legal


def months_figures(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["period"]: p for p in body["series"]}


async def settled(env: Env, seq: int) -> None:
    await eventually(
        lambda: scalar(env.database_url, "SELECT max(stream_seq) FROM stats.consumer_positions"),
        until=lambda reached: reached is not None and reached >= seq,
    )


async def test_a_known_history_gives_the_exact_figures_on_both_clocks(
    stats: httpx.AsyncClient, js: JetStreamContext, env: Env
) -> None:
    events, elapsed, legal = march_history()
    await settled(env, (await publish(js, events))[-1])

    quarters = (
        await stats.get(
            f"/v1/stats/procedures/{PROCEDURE}",
            params={"from": "2026-03", "to": "2026-04", "period": "quarter"},
        )
    ).json()["series"]
    assert [q["period"] for q in quarters] == ["2026-Q1", "2026-Q2"]
    assert quarters[0]["submitted"]["n"] == 20
    whole = (
        await stats.get(
            f"/v1/stats/procedures/{PROCEDURE}", params={"from": "2026-01", "to": "2026-12", "period": "year"}
        )
    ).json()["series"][0]
    assert whole["period"] == "2026"
    assert whole["submitted"] == {"n": 20, "suppressed": False}
    assert whole["decided"]["accepted"]["n"] == 15 and whole["decided"]["rejected"]["n"] == 5
    for clock, exact in (("elapsed", elapsed), ("legal", legal)):
        figure = whole["time_to_decision"][clock]
        assert figure["n"] == 20
        assert figure["p50_days"] == pytest.approx(exact_quantile(exact, 0.5), rel=0.01)
        assert figure["p90_days"] == pytest.approx(exact_quantile(exact, 0.9), rel=0.01)
        assert figure["mean_days"] == pytest.approx(sum(exact) / len(exact), abs=0.01)
    assert whole["within_legal_deadline"] == {"n": 20, "suppressed": False, "share": 1.0}
    assert whole["channels"]["web"]["n"] == 20 and whole["digital_share"]["share"] == 1.0
    assert whole["steps"]["review"]["n"] == 20

    by_month = months_figures(
        (
            await stats.get(f"/v1/stats/procedures/{PROCEDURE}", params={"from": "2026-03", "to": "2026-04"})
        ).json()
    )
    decided_in_march = sum(
        1
        for days, i in zip(elapsed, range(20), strict=True)
        if at("2026-03-02T09:00") + i * timedelta(hours=5) + days * DAY < at("2026-04-01T00:00")
    )
    assert by_month["2026-03"]["time_to_decision"]["elapsed"]["n"] == decided_in_march
    assert by_month["2026-03"]["submitted"]["n"] == 20 and by_month["2026-04"]["submitted"]["n"] == 0
    # Open at the end of March: the cases decided in April; their age then.
    assert by_month["2026-03"]["backlog"]["open"]["n"] == 20 - decided_in_march
    assert by_month["2026-04"]["backlog"]["open"]["n"] == 0


async def test_a_district_with_fewer_than_five_cases_is_suppressed_everywhere(
    stats: httpx.AsyncClient, js: JetStreamContext, env: Env
) -> None:
    events, _, _ = march_history()
    await settled(env, (await publish(js, events))[-1])
    east = (
        await stats.get(
            f"/v1/stats/procedures/{PROCEDURE}",
            params={"from": "2026-03", "to": "2026-03", "district": "est"},
        )
    ).json()
    march = east["series"][0]
    assert march["submitted"] == {"n": None, "suppressed": True}
    assert march["time_to_decision"]["elapsed"]["suppressed"] is True
    assert march["time_to_decision"]["elapsed"]["p50_days"] is None
    assert east["method"]["suppression_threshold"] == 5
    centre = (
        await stats.get(
            f"/v1/stats/procedures/{PROCEDURE}",
            params={"from": "2026-03", "to": "2026-03", "district": "centre"},
        )
    ).json()
    assert centre["series"][0]["submitted"] == {"n": 17, "suppressed": False}


async def test_a_redelivery_and_a_rebuild_change_nothing(
    stats: httpx.AsyncClient, js: JetStreamContext, env: Env
) -> None:
    events, _, _ = march_history()
    seqs = await publish(js, events)
    await settled(env, seqs[-1])
    url, params = f"/v1/stats/procedures/{PROCEDURE}", {"from": "2026-03", "to": "2026-04"}
    before = (await stats.get(url, params=params)).json()
    # The same events again, as a relay republishing after the duplicate window would.
    again = await publish(js, events[:10])
    await settled(env, again[-1])
    assert (await stats.get(url, params=params)).json() == before
    counts = "SELECT sum(n) FROM stats.counts"
    total = await scalar(env.database_url, counts)

    await rebuild(stats_settings(env))
    assert await scalar(env.database_url, "SELECT count(*) FROM stats.cases") == 0
    async for rebuilt in _client(create_stats(stats_settings(env))):
        await settled(env, again[-1])
        assert (await rebuilt.get(url, params=params)).json() == before
    assert await scalar(env.database_url, counts) == total
    assert await query(env.database_url, "SELECT * FROM stats.dead_letters") == []


async def test_every_procedure_is_listed_with_its_method_in_the_readers_language(
    stats: httpx.AsyncClient,
) -> None:
    english = (await stats.get("/v1/stats/procedures", params={"lang": "en"})).json()
    french = (await stats.get("/v1/stats/procedures", headers={"Accept-Language": "fr-FR"})).json()
    assert [p["procedure"] for p in english["procedures"]] == [p["procedure"] for p in french["procedures"]]
    assert len(english["procedures"]) == 5
    permit = next(p for p in english["procedures"] if p["procedure"] == PROCEDURE)
    assert permit["legal_deadline"] == {"months": 2, "days": 0}  # two months in French law
    assert permit["last_12_months"]["submitted"] == {"n": 0, "suppressed": False}
    for body, word in ((english, "Median"), (french, "Médiane")):
        method = body["method"]
        assert word in method["percentiles"] and "stats.method" not in str(method)
    assert "5" in english["method"]["suppression"]


async def test_a_bad_month_or_range_or_procedure_is_a_clear_4xx(stats: httpx.AsyncClient) -> None:
    bad_month = await stats.get(f"/v1/stats/procedures/{PROCEDURE}", params={"from": "2026-13"})
    assert bad_month.status_code == 422 and bad_month.json()["errors"][0]["field"] == "from"
    backwards = await stats.get(
        f"/v1/stats/procedures/{PROCEDURE}", params={"from": "2026-05", "to": "2026-03", "lang": "en"}
    )
    assert (
        backwards.status_code == 422
        and "ends (2026-03) before it starts (2026-05)" in backwards.json()["detail"]
    )
    unknown = await stats.get("/v1/stats/procedures/permis-de-voler", params={"lang": "en"})
    assert unknown.status_code == 404 and "permis-construire" in unknown.json()["detail"]


async def test_ratings_count_per_score_with_their_mean_in_the_month_given(
    stats: httpx.AsyncClient, js: JetStreamContext, env: Env
) -> None:
    events, _, _ = march_history()
    submitted = [e for e in events if isinstance(e, CaseSubmitted)]
    ratings = [5, 4, 4, 3, 5, 1]
    rated: list[EventData] = [
        CaseRated(case_id=case.case_id, rating=r, rated_at=at("2026-04-20T10:00"), with_comment=bool(r % 2))
        for case, r in zip(submitted, ratings, strict=False)
    ]
    # A rating may even arrive before its case is folded: it waits for it.
    await publish(js, rated[:1])
    await publish(js, events + rated[1:])
    await eventually(
        lambda: scalar(env.database_url, "SELECT count(*) FROM stats.folded_events"),
        until=lambda n: n == len(events) + len(rated),
    )
    april = (
        await stats.get(f"/v1/stats/procedures/{PROCEDURE}", params={"from": "2026-04", "to": "2026-04"})
    ).json()["series"][0]["satisfaction"]
    assert april == {
        "n": 6,
        "suppressed": False,
        "counts": {"1": 1, "2": 0, "3": 1, "4": 2, "5": 2},
        "mean": round(sum(ratings) / 6, 2),
    }
