"""A month's backlog (how many cases were open at its end, and how old) is what the previous per-query
computation gave: the cases decided since, binned when decided, plus every case still open, aged at the
month's end (or now, for the month under way), one by one. The fold now counts the open ones when it sees
a month end pass, and corrects that when a case opens or closes later; the figures must not move, and
must not depend on the order the events came in."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from devtools.bench_stats import Event, fold_each
from devtools.servers import PostgresServer
from services.stats import domain, queries
from services.stats.domain import Sketch
from services.stats.projection import SCHEMA
from services.stats.report import Aggregates, Figures, Period, periods
from shared.db import create_pool, migrate
from shared.events import make_envelope
from shared.events.intake import CaseImported, TimelineEntry
from tests.stats.test_figures import DAY, PROCEDURE, Case, at

NOW = at("2026-08-20T15:00")  # the month under way is August; every event is older
MONTHS = domain.months_between(date(2025, 10, 1), date(2026, 11, 1))  # before the first case, after now
MIGRATIONS = Path(domain.__file__).parent / "migrations"
HOUR = timedelta(hours=1)


def previous_backlog(
    cases: list[asyncpg.Record], month: date, *, now: datetime
) -> tuple[int, dict[int, int]]:
    """The previous computation (`Figures.backlog` reading `open_since`, with `projection._decided`'s
    bins): how many cases were open at the month's end, and their ages' bins."""
    bins: dict[int, int] = {}
    for case in cases:
        submitted, decided = case["submitted_at"], case["decided_at"]
        if decided is not None and month in domain.month_ends_crossed(submitted, decided):
            age = max(0.0, (domain.month_end(month) - submitted).total_seconds())
            bins[domain.bin_of(age)] = bins.get(domain.bin_of(age), 0) + 1
    end = min(domain.month_end(month), now)
    for case in cases:
        if case["decided_at"] is None and case["submitted_at"] < end:
            bin_ = domain.bin_of((end - case["submitted_at"]).total_seconds())
            bins[bin_] = bins.get(bin_, 0) + 1
    return sum(bins.values()), bins


def imported(district: str, *timeline: tuple[datetime, str, str | None]) -> CaseImported:
    return CaseImported(
        case_id=uuid.uuid4(),
        procedure=PROCEDURE,
        procedure_version=1,
        service="urbanisme",
        channel="counter",
        legal_deadline=None,
        facts={"district": district},
        timeline=tuple(TimelineEntry(at=a, event=e, outcome=o) for a, e, o in timeline),  # type: ignore[arg-type]
    )


def decided(case: Case, after: timedelta, outcome: str = "accepted") -> list[Event]:
    events = case.events((DAY / 2, "review", None, False), (after, outcome, outcome, False))
    return [(make_envelope(e, case_id=case.case_id, procedure=PROCEDURE), e) for e in events]


def still_open(case: Case) -> list[Event]:
    events = case.events((DAY / 2, "review", None, False))
    return [(make_envelope(e, case_id=case.case_id, procedure=PROCEDURE), e) for e in events]


def at_its_time(events: list[Event]) -> list[Event]:
    """In the order of the instants they report (the order a live city would fold them in)."""

    def instant(event: Event) -> datetime:
        data = event[1]
        for name in ("at", "submitted_at", "opened_at"):
            if isinstance(value := getattr(data, name, None), datetime):
                return value
        assert isinstance(data, CaseImported)
        return data.timeline[-1].at

    return sorted(events, key=instant)


def history() -> tuple[list[Event], list[Event]]:
    """The same events twice: in time order, and as they may come: a decision of late April, and a
    submission of late May, folded after later events sealed their months; old cases imported last."""
    cases: list[Event] = []
    for i in range(14):  # January to June, decided 10 to 75 days later, or withdrawn
        submitted = at("2026-01-05T09:00") + i * 11 * DAY + i * HOUR
        case = Case(submitted, district="est" if i % 4 == 0 else "centre")
        cases += decided(case, (10 + 5 * i) * DAY, "withdrawn" if i % 5 == 2 else "accepted")
    for i in range(8):  # still open now, from February to August
        cases += still_open(Case(at("2026-02-10T10:00") + i * 23 * DAY, district="centre"))
    # Decided on the very instant March ends: open at the end of February only.
    cases += decided(Case(at("2026-02-20T08:00")), at("2026-04-01T00:00") - at("2026-02-20T08:00"))
    late_decision = decided(Case(at("2026-04-02T08:00"), district="est"), 27 * DAY)  # 29 April
    late_submission = still_open(Case(at("2026-05-28T16:00"), district="centre"))
    old = [
        imported("centre", (at("2025-11-03T10:00"), "submitted", None)),  # open since November
        imported(
            "est",
            (at("2025-12-15T10:00"), "submitted", None),
            (at("2026-01-10T10:00"), "waiting-for-citizen", None),
            (at("2026-02-02T10:00"), "citizen-replied", None),
            (at("2026-03-09T10:00"), "decided", "rejected"),
        ),
    ]
    old_events: list[Event] = [(make_envelope(e, case_id=e.case_id, procedure=PROCEDURE), e) for e in old]
    in_time = at_its_time(cases + late_decision + late_submission + old_events)
    as_they_come = at_its_time(cases + late_decision[:-1]) + late_decision[-1:] + late_submission + old_events
    return in_time, as_they_come


@pytest.fixture
async def read_models(pg_server: PostgresServer) -> AsyncIterator[list[asyncpg.Pool]]:
    """Two empty read models of stats."""
    pools = []
    for _ in range(2):
        pool = await create_pool(pg_server.create_database(f"backlog_{uuid.uuid4().hex[:12]}"), max_size=2)
        await migrate(pool, schema=SCHEMA, directory=MIGRATIONS, shared=("projection",))
        pools.append(pool)
    yield pools
    for pool in pools:
        await pool.close()


async def tables(pool: asyncpg.Pool) -> list[list[str]]:
    return [
        [r["r"] for r in await pool.fetch(f"SELECT ROW(t.*)::text AS r FROM stats.{table} AS t ORDER BY r")]
        for table in ("counts", "bins", "sums", "sealed_months")
    ]


async def test_the_backlog_of_every_month_is_what_the_previous_computation_gave(
    read_models: list[asyncpg.Pool],
) -> None:
    in_time, as_they_come = history()
    for pool, events in zip(read_models, (in_time, as_they_come), strict=True):
        await fold_each(pool, events)
    pool = read_models[1]
    assert await pool.fetchval("SELECT through FROM stats.sealed_months") == date(2026, 7, 1)
    shown = periods(MONTHS, "month")
    for district in ("", "centre", "est"):
        cases = await pool.fetch(
            "SELECT submitted_at, decided_at FROM stats.cases WHERE $1 = '' OR district = $1", district
        )
        data = await queries.aggregates(pool, procedure=PROCEDURE, district=district, periods=shown, now=NOW)
        published = Figures(data, threshold=1)
        for month in MONTHS:
            n, bins = previous_backlog(cases, month, now=NOW)
            ages = domain.merged([data.backlog_ages.get(month, Sketch()), data.live.get(month, Sketch())])
            assert (published.backlog(month).open.n, list(ages.bins), list(ages.counts)) == (
                n,
                sorted(bins),
                [bins[b] for b in sorted(bins)],
            ), (district, month)
            previous = Figures(
                Aggregates(counts={(month, "open_at_end"): n}, backlog_ages={month: Sketch.of(bins)}),
                threshold=1,
            )
            assert published.backlog(month) == previous.backlog(month)
    every = await pool.fetch("SELECT submitted_at, decided_at FROM stats.cases")
    counted = [previous_backlog(every, month, now=NOW)[0] for month in MONTHS]
    assert counted == [0, 1, 2, 3, 6, 8, 9, 12, 12, 11, 10, 10, 10, 10]  # August and later: open now
    # In whatever order the fold met the events, the same tables.
    assert await tables(read_models[0]) == await tables(read_models[1])


async def test_a_long_period_has_from_running_totals_the_figures_of_its_months(
    read_models: list[asyncpg.Pool],
) -> None:
    _, as_they_come = history()
    pool = read_models[0]
    await fold_each(pool, as_they_come)
    long = [Period("2026-01/2026-08", domain.months_between(date(2026, 1, 1), date(2026, 8, 1)))]
    long += periods(domain.months_between(date(2025, 10, 1), date(2026, 12, 1)), "year")
    for district in ("", "centre", "est"):
        read = await queries.aggregates(pool, procedure=PROCEDURE, district=district, periods=long, now=NOW)
        assert read.to_date and read.sealed == date(2026, 7, 1)
        each = await queries.aggregates(
            pool, procedure=PROCEDURE, district=district, periods=shown(), now=NOW
        )
        each.sealed = None  # every month merged, one by one
        for period in long:
            assert Figures(read, threshold=1).period(period) == Figures(each, threshold=1).period(period)
    assert Figures(read, threshold=1).period(long[0]).steps["review"].n == 5  # in the district est


def shown() -> list[Period]:
    """Every month of the long periods, each its own."""
    return periods(domain.months_between(date(2025, 10, 1), date(2026, 12, 1)), "month")
