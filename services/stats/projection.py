"""stats' read-model writes: one function per event it folds (called from `consumers.py`).

Each case row keeps what its durations need; each fold adds the case's contribution to the aggregates of
its procedure × month × district (and of every district together, district ''; `cells.py`). workflow's
events are applied in the case's version order (`shared.projection.next_workflow_event`), once each.

The backlog of a month (`open_at_end`, `backlog_age`) holds every case open at its end once the fold has
sealed the month (`month_ends.py`), and until then the cases decided since (a query adds the open ones):
so a case that closes adds its age to the months it crossed that are not sealed, and leaves the sealed
ones whose end it did not see after all (its decision was folded late); a case that opens into sealed
months (folded late, or imported) joins them.

A fold (a batch's transaction, or one event's) adds up its additions to the aggregates in memory and
writes each row once before it commits (`_Totals`), and reads a procedure's months sealed once
(`_sealed_through`). A batch seals first the months its events see end (`seal_first`), then folds its
cases side by side (`shared.projection.fold_side_by_side`): the figures are the same in any order.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import asyncpg

from services.stats import cells, domain, month_ends, reports
from services.stats.cells import Cell, seconds
from shared.bus import Nak
from shared.events import Envelope, EventData
from shared.events.intake import CaseImported, CaseRated, CaseSubmitted
from shared.events.workflow import StepChanged, WorkflowEvent
from shared.procedures import CITY_TIMEZONE
from shared.projection import fold_side_by_side, is_workflow_event, kept, next_in_order, next_workflow_event

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
    sealed = await _sealed_through(conn, event.procedure, at=event.submitted_at)
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
    cell, adds = Cell(event.procedure, district, sealed=sealed), _adding(conn)
    month = domain.month_of(event.submitted_at)
    await cell.count(adds, month, "submitted")
    await cell.count(adds, month, f"channel:{event.channel}")
    await cell.backlog(adds, event.submitted_at, _months(month, sealed))


async def workflow_event(conn: asyncpg.Connection, envelope: Envelope, event: WorkflowEvent) -> None:
    """Any workflow event but a step change only moves the case's version on."""
    await _bump(conn, event.case_id, event.version)


async def unknown_event(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """A workflow event of a type this release does not know yet still moves the case's version on."""
    if is_workflow_event(envelope):
        await _bump(conn, envelope.case_id, envelope.data["version"])


# The case's row, locked (`next_workflow_event`), and its street report's if it is one.
CASE_AND_REPORT = (
    "SELECT c.*, r.case_id IS NOT NULL AS is_report, r.legal_deadline AS report_deadline, "
    "r.first_done_at AS report_first_done_at FROM stats.cases AS c LEFT JOIN stats.reports AS r USING (case_id) "
    "WHERE c.case_id = $1 FOR UPDATE OF c"
)
MOVED = (
    "UPDATE stats.cases SET workflow_version = $2, step = $3, step_since = $4, paused_since = $5, "
    "paused_seconds = $6, legal_deadline = $7, decided_at = $8, decision = $9 WHERE case_id = $1"
)
# Moved into a step that is not final: the case enters it.
MOVED_ON = (
    f"WITH moved AS ({MOVED} RETURNING case_id) INSERT INTO stats.step_entries(case_id, step, entered_at) "
    "SELECT case_id, $3, $4 FROM moved ON CONFLICT DO NOTHING"
)


async def step_changed(conn: asyncpg.Connection, envelope: Envelope, event: StepChanged) -> None:
    case = await conn.fetchrow(CASE_AND_REPORT, event.case_id)
    if not next_in_order(case, event.version):
        return
    if case["is_report"]:
        await reports.step_changed(
            conn, event, legal_deadline=case["report_deadline"], first_done_at=case["report_first_done_at"]
        )
    decision = domain.decision_of(event.outcome, tacit=event.tacit) if event.outcome else None
    was_open = case["decided_at"] is None
    sealed = await _sealed_through(conn, case["procedure"], at=event.at)
    cell, adds = Cell(case["procedure"], case["district"], sealed=sealed), _adding(conn)
    await cell.duration(
        adds, domain.month_of(event.at), f"step:{event.from_step}", seconds(case["step_since"], event.at)
    )
    paused_since, paused_seconds = case["paused_since"], case["paused_seconds"]
    if paused_since is not None and (not event.clock_paused or event.outcome):
        paused_seconds += seconds(paused_since, event.at)
        paused_since = None
    elif paused_since is None and event.clock_paused and not event.outcome:
        paused_since = event.at
    await conn.execute(
        MOVED if decision else MOVED_ON,
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
        if not was_open:  # no procedure leaves a final step, but the figures follow the events
            await cell.backlog(adds, submitted_at, _months(domain.month_of(submitted_at), sealed))
        return
    await _remaining(conn, adds, cell, event.case_id, decided_at=event.at, decision=decision)
    await _decided(
        adds,
        cell,
        submitted_at=submitted_at,
        at=event.at,
        decision=decision,
        paused_seconds=paused_seconds,
        legal_deadline=event.legal_deadline,
    )
    await _closed(adds, cell, submitted_at=submitted_at, at=event.at, sealed=sealed if was_open else None)


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
    sealed = await _sealed_through(conn, event.procedure, at=last.at)
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
    adds = _adding(conn)
    await cell.count(adds, month, "submitted")
    await cell.count(adds, month, f"channel:{event.channel}")
    if decision is None:
        await cell.backlog(adds, submitted_at, _months(month, sealed))
        return
    await _decided(
        adds,
        cell,
        submitted_at=submitted_at,
        at=last.at,
        decision=decision,
        paused_seconds=paused_seconds,
        legal_deadline=event.legal_deadline,
    )
    await _closed(adds, cell, submitted_at=submitted_at, at=last.at, sealed=None)


async def case_rated(conn: asyncpg.Connection, envelope: Envelope, event: CaseRated) -> None:
    """A citizen's rating counts in the month it was given (one per case: intake sees to it)."""
    case = await conn.fetchrow(
        "SELECT procedure, district FROM stats.cases WHERE case_id = $1", event.case_id
    )
    if case is None:
        raise Nak("the case is not folded yet")
    cell, month, adds = (
        Cell(case["procedure"], case["district"]),
        domain.month_of(event.rated_at),
        _adding(conn),
    )
    await cell.count(adds, month, f"rating:{event.rating}")
    await cell.add(adds, month, "rating", float(event.rating))


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
    adds: asyncpg.Connection,
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
            adds,
            month,
            f"remaining:{entry['step']}",
            seconds(entry["entered_at"], decided_at),
            with_sum=False,
        )


async def _bump(conn: asyncpg.Connection, case_id: uuid.UUID, version: int) -> None:
    """The case's version moved on to `version` if it was just before (one statement); otherwise the
    event is a duplicate, or not folded yet (`Nak`), as `next_workflow_event` says."""
    if await conn.fetchval(BUMPED, case_id, version):
        return
    if await next_workflow_event(conn, table=CASES, case_id=case_id, version=version):
        raise Nak("the case moved meanwhile")  # another replica's fold committed in between: again


BUMPED = (
    "UPDATE stats.cases SET workflow_version = $2 WHERE case_id = $1 AND workflow_version = $2 - 1 "
    "RETURNING true"
)


# --- what a fold keeps until it commits ---------------------------------------------------------------


class _Totals:
    """The aggregates' additions of the fold under way (`cells`' COUNT, BIN, SUM and TO_DATE, which only
    add up): added up here, and written once per row, in one statement per table, before the fold
    commits, instead of one statement per event. A sum's values are added up in the events' order, then to
    the row's total."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[Any, ...]] = Counter()
        self.bins: Counter[tuple[Any, ...]] = Counter()
        self.to_date: Counter[tuple[Any, ...]] = Counter()
        self.sums: dict[tuple[Any, ...], tuple[int, float]] = {}

    def add(self, sql: str, rows: Iterable[Sequence[Any]]) -> bool:
        """Keep the rows of one of `cells`' additions; False for any other statement."""
        if sql == cells.COUNT or sql == cells.BIN:
            added = self.counts if sql == cells.COUNT else self.bins
            for row in rows:
                added[tuple(row[:-1])] += row[-1]
        elif sql == cells.SUM:
            for row in rows:
                n, total = self.sums.get(tuple(row[:-1]), (0, 0.0))
                self.sums[tuple(row[:-1])] = (n + 1, total + row[-1])
        elif sql == cells.TO_DATE:
            for procedure, district, measure, bin_, n, months in rows:
                for month in months:
                    self.to_date[(procedure, district, month, measure, bin_)] += n
        else:
            return False
        return True

    async def flush(self, conn: asyncpg.Connection) -> None:
        # Taken at once: the fold of another procedure, side by side, may add more while these are written.
        tables = [
            (_COUNTS, [(*key, n) for key, n in sorted(self.counts.items())]),
            (_BINS, [(*key, n) for key, n in sorted(self.bins.items())]),
            (_SUMS, [(*key, *added) for key, added in sorted(self.sums.items())]),
            (_TO_DATE, [(*key, n) for key, n in sorted(self.to_date.items())]),
        ]
        for added in (self.counts, self.bins, self.to_date, self.sums):
            added.clear()
        for sql, rows in tables:
            if rows:
                await conn.execute(sql, *(list(column) for column in zip(*rows, strict=True)))


_CELL = "procedure, month, district, measure"
_COUNTS = (
    f"INSERT INTO stats.counts({_CELL}, n) "
    "SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::bigint[]) "
    f"ON CONFLICT ({_CELL}) DO UPDATE SET n = stats.counts.n + EXCLUDED.n"
)
_BINS = (
    f"INSERT INTO stats.bins({_CELL}, bin, n) "
    "SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::int[], $6::bigint[]) "
    f"ON CONFLICT (procedure, district, month, measure, bin) DO UPDATE SET n = stats.bins.n + EXCLUDED.n"
)
_SUMS = (
    f"INSERT INTO stats.sums({_CELL}, n, total) "
    "SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::bigint[], $6::float8[]) "
    f"ON CONFLICT ({_CELL}) DO UPDATE SET n = stats.sums.n + EXCLUDED.n, total = stats.sums.total + EXCLUDED.total"
)
_TO_DATE = (
    "INSERT INTO stats.bins_to_date(procedure, district, month, measure, bin, n) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::int[], $6::bigint[]) "
    "ON CONFLICT (procedure, district, month, measure, bin) DO UPDATE SET n = stats.bins_to_date.n + EXCLUDED.n"
)


class _Adding:
    """Stands in for the connection in `cells`' calls: their additions are kept (`_Totals`); any other
    statement (a backlog taken back) goes to the connection once the additions kept are written."""

    def __init__(self, conn: asyncpg.Connection, totals: _Totals) -> None:
        self._conn, self._totals = conn, totals

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        if not self._totals.add(sql, rows):
            await self._totals.flush(self._conn)
            await self._conn.executemany(sql, rows)


def _adding(conn: asyncpg.Connection) -> asyncpg.Connection:
    """Where a handler sends `cells`' statements: the fold's totals, or (outside a fold) the connection."""
    totals = kept("stats.totals", _Totals)
    return conn if totals is None else _Adding(conn, totals)


class _Sealed(dict[str, date]):
    """The last month sealed of each procedure, as read by the fold under way: its row stays locked (shared)
    until the fold commits, so no month is sealed meanwhile but by this fold. `final`: no more month may be
    sealed in this fold (its cases are being folded side by side)."""

    final = False

    async def flush(self, conn: asyncpg.Connection) -> None:
        """Nothing to write: what it keeps is a read, and the lock it took ends with the fold."""


class SealWhileSideBySide(RuntimeError):
    """A case folded side by side with others needs a month sealed (`seal_first` missed it): the batch is
    folded again the careful way, in order."""


async def _sealed_through(conn: asyncpg.Connection, procedure: str, *, at: datetime) -> date:
    """`month_ends.sealed_through`, read once per procedure and fold while no month needs sealing; the
    additions kept are written first when one does (a seal reads the bins)."""
    known = kept("stats.sealed", _Sealed)
    if known is None:
        return await month_ends.sealed_through(conn, procedure, at=at)
    ended = domain.previous_month(domain.month_of(at))
    sealed = known.get(procedure)
    if sealed is None or sealed < ended:
        sealed = await conn.fetchval(month_ends.SEALED, procedure, ended)
    if sealed is None:
        if known.final:
            raise SealWhileSideBySide(f"{procedure}: a month ended by {at} is not sealed yet")
        if (totals := kept("stats.totals", _Totals)) is not None:
            await totals.flush(conn)
        sealed = await month_ends.sealed_through(conn, procedure, at=at)
    known[procedure] = sealed
    return sealed


def _sealing_date(data: EventData | None) -> datetime | None:
    """The date an event's fold reads its procedure's months sealed at (`_sealed_through`), if it does."""
    if isinstance(data, CaseSubmitted):
        return data.submitted_at
    if isinstance(data, StepChanged):
        return data.at
    if isinstance(data, CaseImported):
        return data.timeline[-1].at
    return None


async def seal_first(conn: asyncpg.Connection, events: list[tuple[Envelope, EventData | None]]) -> None:
    """Before a batch's cases are folded side by side: the months each procedure's latest event sees end
    are sealed, once, so that no case's fold seals one (a seal reads and writes the procedure's cases and
    figures). The figures are the same as if each month were sealed at the event that sees its end first:
    the folds keep them right whatever order the events come in (module docstring)."""
    latest: dict[str, datetime] = {}
    for envelope, data in events:
        if (at := _sealing_date(data)) is not None:
            latest[envelope.procedure] = max(at, latest.get(envelope.procedure, at))
    for procedure, at in sorted(latest.items()):
        await _sealed_through(conn, procedure, at=at)
    if (known := kept("stats.sealed", _Sealed)) is not None:
        known.final = True


# Once the months a batch sees end are sealed (`seal_first`), an event changes its case's rows, and adds to
# figures: the fast way folds the cases side by side.
fold_side_by_side(SCHEMA, key=lambda envelope: envelope.subject, prepare=seal_first)


def _months(first: date, last: date | None) -> list[date]:
    """The months from `first` to `last` (none if `last` is None)."""
    return domain.months_between(first, last) if last else []
