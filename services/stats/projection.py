"""stats' read-model writes: one function per event it folds (called from `consumers.py`).

Each case row keeps what its durations need; each fold adds the case's contribution to the aggregates of
its procedure × month × district (and of every district together, district ''). workflow's events are
applied in the case's version order (`shared.projection.next_workflow_event`), once each.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

import asyncpg

from services.stats import domain
from shared.bus import Nak
from shared.events import Envelope
from shared.events.intake import CaseImported, CaseRated, CaseSubmitted
from shared.events.workflow import StepChanged, WorkflowEvent
from shared.procedures import CITY_TIMEZONE
from shared.projection import is_workflow_event, next_workflow_event

SCHEMA = "stats"
TABLES = ("step_entries", "cases", "counts", "bins", "sums")
CASES = "stats.cases"


async def case_submitted(conn: asyncpg.Connection, envelope: Envelope, event: CaseSubmitted) -> None:
    district = str(event.facts.get("district") or "")
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
    cell = _Cell(event.procedure, district)
    month = domain.month_of(event.submitted_at)
    await cell.count(conn, month, "submitted")
    await cell.count(conn, month, f"channel:{event.channel}")


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
    cell = _Cell(case["procedure"], case["district"])
    await cell.duration(
        conn, domain.month_of(event.at), f"step:{event.from_step}", _seconds(case["step_since"], event.at)
    )
    paused_since, paused_seconds = case["paused_since"], case["paused_seconds"]
    if paused_since is not None and (not event.clock_paused or event.outcome):
        paused_seconds += _seconds(paused_since, event.at)
        paused_since = None
    elif paused_since is None and event.clock_paused and not event.outcome:
        paused_since = event.at
    decision = domain.decision_of(event.outcome, tacit=event.tacit) if event.outcome else None
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
    if decision is None:
        await _entered(conn, event.case_id, event.to_step, event.at)
    else:
        await _remaining(conn, cell, event.case_id, decided_at=event.at, decision=decision)
        await _decided(
            conn,
            cell,
            submitted_at=case["submitted_at"],
            at=event.at,
            decision=decision,
            paused_seconds=paused_seconds,
            legal_deadline=event.legal_deadline,
        )


async def case_imported(conn: asyncpg.Connection, envelope: Envelope, event: CaseImported) -> None:
    """A past case from the city's former system: the same figures as a live one, from its timeline."""
    submitted_at, last = event.timeline[0].at, event.timeline[-1]
    paused_seconds, paused_since = 0.0, None
    for entry in event.timeline:
        if entry.event == "waiting-for-citizen":
            paused_since = entry.at
        elif paused_since is not None:
            paused_seconds, paused_since = paused_seconds + _seconds(paused_since, entry.at), None
    decision = domain.imported_decision(last.outcome) if last.outcome else None
    district = str(event.facts.get("district") or "")
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
    cell, month = _Cell(event.procedure, district), domain.month_of(submitted_at)
    await cell.count(conn, month, "submitted")
    await cell.count(conn, month, f"channel:{event.channel}")
    if decision is not None:
        await _decided(
            conn,
            cell,
            submitted_at=submitted_at,
            at=last.at,
            decision=decision,
            paused_seconds=paused_seconds,
            legal_deadline=event.legal_deadline,
        )


async def case_rated(conn: asyncpg.Connection, envelope: Envelope, event: CaseRated) -> None:
    """A citizen's rating counts in the month it was given (one per case: intake sees to it)."""
    case = await conn.fetchrow(
        "SELECT procedure, district FROM stats.cases WHERE case_id = $1", event.case_id
    )
    if case is None:
        raise Nak("the case is not folded yet")
    cell, month = _Cell(case["procedure"], case["district"]), domain.month_of(event.rated_at)
    await cell.count(conn, month, f"rating:{event.rating}")
    await cell.add(conn, month, "rating", float(event.rating))


async def _decided(
    conn: asyncpg.Connection,
    cell: _Cell,
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
        elapsed = _seconds(submitted_at, at)
        await cell.duration(conn, month, "elapsed", elapsed)
        await cell.duration(conn, month, "legal", max(0.0, elapsed - paused_seconds))
        if legal_deadline is not None:
            await cell.count(conn, month, "deadline:known")
            if at.astimezone(CITY_TIMEZONE).date() <= legal_deadline:
                await cell.count(conn, month, "deadline:met")
    # The case was open at the end of every month it crossed: its age then joins those months' backlog.
    for crossed in domain.month_ends_crossed(submitted_at, at):
        await cell.count(conn, crossed, "open_at_end")
        await cell.duration(
            conn, crossed, "backlog_age", _seconds(submitted_at, domain.month_end(crossed)), with_sum=False
        )


async def _entered(conn: asyncpg.Connection, case_id: uuid.UUID, step: str, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO stats.step_entries(case_id, step, entered_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        case_id,
        step,
        at,
    )


async def _remaining(
    conn: asyncpg.Connection,
    cell: _Cell,
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
            _seconds(entry["entered_at"], decided_at),
            with_sum=False,
        )


async def _bump(conn: asyncpg.Connection, case_id: uuid.UUID, version: int) -> None:
    await conn.execute("UPDATE stats.cases SET workflow_version = $2 WHERE case_id = $1", case_id, version)


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())


class _Cell:
    """The aggregates one case adds to: its district's and every district's together."""

    def __init__(self, procedure: str, district: str) -> None:
        self.procedure = procedure
        self.districts = ("", district) if district else ("",)

    async def count(self, conn: asyncpg.Connection, month: date, measure: str) -> None:
        await conn.executemany(
            "INSERT INTO stats.counts(procedure, month, district, measure, n) VALUES ($1, $2, $3, $4, 1) "
            "ON CONFLICT (procedure, month, district, measure) DO UPDATE SET n = stats.counts.n + 1",
            [(self.procedure, month, d, measure) for d in self.districts],
        )

    async def duration(
        self, conn: asyncpg.Connection, month: date, measure: str, seconds: float, *, with_sum: bool = True
    ) -> None:
        await conn.executemany(
            "INSERT INTO stats.bins(procedure, month, district, measure, bin, n) VALUES ($1, $2, $3, $4, $5, 1) "
            "ON CONFLICT (procedure, month, district, measure, bin) DO UPDATE SET n = stats.bins.n + 1",
            [(self.procedure, month, d, measure, domain.bin_of(seconds)) for d in self.districts],
        )
        if with_sum:
            await self.add(conn, month, measure, seconds)

    async def add(self, conn: asyncpg.Connection, month: date, measure: str, value: float) -> None:
        await conn.executemany(
            "INSERT INTO stats.sums(procedure, month, district, measure, n, total) "
            "VALUES ($1, $2, $3, $4, 1, $5) ON CONFLICT (procedure, month, district, measure) "
            "DO UPDATE SET n = stats.sums.n + 1, total = stats.sums.total + EXCLUDED.total",
            [(self.procedure, month, d, measure, value) for d in self.districts],
        )
