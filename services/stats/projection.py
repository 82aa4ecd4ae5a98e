"""stats' read-model writes: one function per event it folds (called from `consumers.py`).

Each case row keeps what its durations need; each fold adds the case's contribution to the aggregates of
its procedure × month × district (and of every district together, district ''; `cells.py`). workflow's
events are applied in the case's version order (`shared.projection.next_workflow_event`), once each.

The backlog of a month (`open_at_end`, `backlog_age`) holds every case open at its end once the fold has
sealed the month (`month_ends.py`), and until then the cases decided since (a query adds the open ones):
so a case that closes adds its age to the months it crossed that are not sealed, and leaves the sealed
ones whose end it did not see after all (its decision was folded late); a case that opens into sealed
months (folded late, or imported) joins them.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

import asyncpg

from services.stats import domain, month_ends, reports
from services.stats.cells import Cell, seconds
from shared.bus import Nak
from shared.events import Envelope
from shared.events.intake import CaseImported, CaseRated, CaseSubmitted
from shared.events.workflow import StepChanged, WorkflowEvent
from shared.procedures import CITY_TIMEZONE
from shared.projection import is_workflow_event, next_workflow_event

SCHEMA = "stats"
TABLES = (
    "step_entries",
    "cases",
    "counts",
    "bins",
    "sums",
    "sealed_months",
    "bins_to_date",
    *reports.TABLES,
)
CASES = "stats.cases"


async def case_submitted(conn: asyncpg.Connection, envelope: Envelope, event: CaseSubmitted) -> None:
    district = str(event.facts.get("district") or "")
    sealed = await month_ends.sealed_through(conn, event.procedure, at=event.submitted_at)
    inserted = await conn.fetchval(
        "INSERT INTO stats.cases(case_id, procedure, district, channel, submitted_at, legal_deadline, step, "
        "step_since) VALUES ($1, $2, $3, $4, $5, $6, $7, $5) ON CONFLICT (case_id) DO NOTHING RETURNING true",
        event.case_id,
        event.procedure,
        district,
        event.channel,
        event.submitted_at,
        event.legal_deadline,
        event.first_step,
    )
    if not inserted:
        return
    await _entered(conn, event.case_id, event.first_step, event.submitted_at)
    cell = Cell(event.procedure, district, sealed=sealed)
    month = domain.month_of(event.submitted_at)
    await cell.count(conn, month, "submitted")
    await cell.count(conn, month, f"channel:{event.channel}")
    await cell.backlog(conn, event.submitted_at, _months(month, sealed))


async def workflow_event(conn: asyncpg.Connection, envelope: Envelope, event: WorkflowEvent) -> None:
    """Any workflow event but a step change only moves the case's version on."""
    if await next_workflow_event(conn, table=CASES, case_id=event.case_id, version=event.version):
        await _bump(conn, event.case_id, event.version)


async def unknown_event(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """A workflow event of a type this release does not know yet still moves the case's version on."""
    if is_workflow_event(envelope):
        version = envelope.data["version"]
        if await next_workflow_event(conn, table=CASES, case_id=envelope.case_id, version=version):
            await _bump(conn, envelope.case_id, version)


async def step_changed(conn: asyncpg.Connection, envelope: Envelope, event: StepChanged) -> None:
    case = await next_workflow_event(conn, table=CASES, case_id=event.case_id, version=event.version)
    if case is None:
        return
    await reports.step_changed(conn, event)
    decision = domain.decision_of(event.outcome, tacit=event.tacit) if event.outcome else None
    was_open = case["decided_at"] is None
    sealed = await month_ends.sealed_through(conn, case["procedure"], at=event.at)
    cell = Cell(case["procedure"], case["district"], sealed=sealed)
    await cell.duration(
        conn, domain.month_of(event.at), f"step:{event.from_step}", seconds(case["step_since"], event.at)
    )
    paused_since, paused_seconds = case["paused_since"], case["paused_seconds"]
    if paused_since is not None and (not event.clock_paused or event.outcome):
        paused_seconds += seconds(paused_since, event.at)
        paused_since = None
    elif paused_since is None and event.clock_paused and not event.outcome:
        paused_since = event.at
    await conn.execute(
        "UPDATE stats.cases SET workflow_version = $2, step = $3, step_since = $4, paused_since = $5, "
        "paused_seconds = $6, legal_deadline = $7, decided_at = $8, decision = $9 WHERE case_id = $1",
        event.case_id,
        event.version,
        event.to_step,
        event.at,
        paused_since,
        paused_seconds,
        event.legal_deadline,
        event.at if decision else None,
        decision,
    )
    submitted_at = case["submitted_at"]
    if decision is None:
        await _entered(conn, event.case_id, event.to_step, event.at)
        if not was_open:  # no procedure leaves a final step, but the figures follow the events
            await cell.backlog(conn, submitted_at, _months(domain.month_of(submitted_at), sealed))
        return
    await _remaining(conn, cell, event.case_id, decided_at=event.at, decision=decision)
    await _decided(
        conn,
        cell,
        submitted_at=submitted_at,
        at=event.at,
        decision=decision,
        paused_seconds=paused_seconds,
        legal_deadline=event.legal_deadline,
    )
    await _closed(conn, cell, submitted_at=submitted_at, at=event.at, sealed=sealed if was_open else None)


async def case_imported(conn: asyncpg.Connection, envelope: Envelope, event: CaseImported) -> None:
    """A past case from the city's former system: the same figures as a live one, from its timeline."""
    submitted_at, last = event.timeline[0].at, event.timeline[-1]
    paused_seconds, paused_since = 0.0, None
    for entry in event.timeline:
        if entry.event == "waiting-for-citizen":
            paused_since = entry.at
        elif paused_since is not None:
            paused_seconds, paused_since = paused_seconds + seconds(paused_since, entry.at), None
    decision = domain.imported_decision(last.outcome) if last.outcome else None
    district = str(event.facts.get("district") or "")
    sealed = await month_ends.sealed_through(conn, event.procedure, at=last.at)
    inserted = await conn.fetchval(
        "INSERT INTO stats.cases(case_id, procedure, district, channel, submitted_at, legal_deadline, step, "
        "step_since, paused_since, paused_seconds, decided_at, decision) "
        "VALUES ($1, $2, $3, $4, $5, $6, 'imported', $7, $8, $9, $10, $11) "
        "ON CONFLICT (case_id) DO NOTHING RETURNING true",
        event.case_id,
        event.procedure,
        district,
        event.channel,
        submitted_at,
        event.legal_deadline,
        last.at,
        paused_since,
        paused_seconds,
        last.at if decision else None,
        decision,
    )
    if not inserted:
        return
    cell, month = Cell(event.procedure, district, sealed=sealed), domain.month_of(submitted_at)
    await cell.count(conn, month, "submitted")
    await cell.count(conn, month, f"channel:{event.channel}")
    if decision is None:
        await cell.backlog(conn, submitted_at, _months(month, sealed))
        return
    await _decided(
        conn,
        cell,
        submitted_at=submitted_at,
        at=last.at,
        decision=decision,
        paused_seconds=paused_seconds,
        legal_deadline=event.legal_deadline,
    )
    await _closed(conn, cell, submitted_at=submitted_at, at=last.at, sealed=None)


async def case_rated(conn: asyncpg.Connection, envelope: Envelope, event: CaseRated) -> None:
    """A citizen's rating counts in the month it was given (one per case: intake sees to it)."""
    case = await conn.fetchrow(
        "SELECT procedure, district FROM stats.cases WHERE case_id = $1", event.case_id
    )
    if case is None:
        raise Nak("the case is not folded yet")
    cell, month = Cell(case["procedure"], case["district"]), domain.month_of(event.rated_at)
    await cell.count(conn, month, f"rating:{event.rating}")
    await cell.add(conn, month, "rating", float(event.rating))


async def _decided(
    conn: asyncpg.Connection,
    cell: Cell,
    *,
    submitted_at: datetime,
    at: datetime,
    decision: domain.Decision,
    paused_seconds: float,
    legal_deadline: date | None,
) -> None:
    month = domain.month_of(at)
    await cell.count(conn, month, f"decided:{decision}")
    if decision.is_decision:
        elapsed = seconds(submitted_at, at)
        await cell.duration(conn, month, "elapsed", elapsed)
        await cell.duration(conn, month, "legal", max(0.0, elapsed - paused_seconds))
        if legal_deadline is not None:
            await cell.count(conn, month, "deadline:known")
            if at.astimezone(CITY_TIMEZONE).date() <= legal_deadline:
                await cell.count(conn, month, "deadline:met")


async def _closed(
    conn: asyncpg.Connection, cell: Cell, *, submitted_at: datetime, at: datetime, sealed: date | None
) -> None:
    """The case was open at the end of every month it crossed: its age then joins those months' backlog.
    It was counted already in the months sealed while it was open (`sealed`: the last of them, None if it
    was not open), and taken out of those whose end it did not see after all."""
    crossed = domain.month_ends_crossed(submitted_at, at)
    counted = _months(domain.month_of(submitted_at), sealed)
    await cell.backlog(conn, submitted_at, [m for m in crossed if m not in counted])
    await cell.backlog(conn, submitted_at, [m for m in counted if m not in crossed], remove=True)


async def _entered(conn: asyncpg.Connection, case_id: uuid.UUID, step: str, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO stats.step_entries(case_id, step, entered_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        case_id,
        step,
        at,
    )


async def _remaining(
    conn: asyncpg.Connection,
    cell: Cell,
    case_id: uuid.UUID,
    *,
    decided_at: datetime,
    decision: domain.Decision,
) -> None:
    """How long the case still took from each step it entered: what a case at that step can expect."""
    entries = await conn.fetch(
        "DELETE FROM stats.step_entries WHERE case_id = $1 RETURNING step, entered_at", case_id
    )
    if not decision.is_decision:
        return
    month = domain.month_of(decided_at)
    for entry in entries:
        await cell.duration(
            conn,
            month,
            f"remaining:{entry['step']}",
            seconds(entry["entered_at"], decided_at),
            with_sum=False,
        )


async def _bump(conn: asyncpg.Connection, case_id: uuid.UUID, version: int) -> None:
    await conn.execute("UPDATE stats.cases SET workflow_version = $2 WHERE case_id = $1", case_id, version)


def _months(first: date, last: date | None) -> list[date]:
    """The months from `first` to `last` (none if `last` is None)."""
    return domain.months_between(first, last) if last else []
