"""Street reports, folded: one row per report of a procedure whose place publishes its district
(`Procedure.located`), with what its published figures need (`reports_queries.py` reads them exactly).

Called from stats' own handlers (`consumers.py`, `projection.step_changed`), inside their fold's
transaction: a workflow event reaches `step_changed` once, in the case's version order, because
`projection.step_changed` checked it with `next_workflow_event` first.

What a report keeps:
- its category and district (public facts of `CaseSubmitted`) and its commitment date;
- the final step it is in now (none while open: a reporter who says "not fixed" reopens it);
- its first entry into each final step (`report_finals`), so that a report done, reopened and done again
  is counted done once, and its time to done runs to its first "done";
- the reporter's answers to "is it really fixed?" (`report_fix_checks`), one per "done".
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from uuid import UUID

import asyncpg

from shared.bus import Nak
from shared.events import Envelope
from shared.events.intake import CaseImported, CaseSubmitted, FixChecked
from shared.events.workflow import StepChanged
from shared.pages import city_day
from shared.procedures import Catalogue, Outcome, Procedure

log = logging.getLogger(__name__)

# The public fact that says what kind of problem a report is about (`eclairage`, `nid-de-poule`...).
CATEGORY = "category"
DISTRICT = "district"
TABLES = ("reports", "report_finals", "report_fix_checks")


def is_reports(procedure: Procedure | None) -> bool:
    """Whether a procedure's cases are street reports: its place publishes its district."""
    return procedure is not None and procedure.located is not None


async def case_submitted(conn: asyncpg.Connection, event: CaseSubmitted, *, catalogue: Catalogue) -> None:
    """A report of any version of a reports procedure (its newest version says it is one)."""
    if not is_reports(catalogue.latest(event.procedure)):
        return
    version = catalogue.get(event.procedure, event.procedure_version)
    deadline = _commitment(event.legal_deadline, version, event.submitted_at)
    await _insert(conn, event, event.submitted_at, deadline)


async def case_imported(conn: asyncpg.Connection, event: CaseImported, *, catalogue: Catalogue) -> None:
    """A past report from the city's former system: its category, district and dated timeline. Its
    outcome names the final step it counts in: accepted the step with outcome accepted ("done"), rejected
    the one with outcome rejected; a withdrawn report is closed in no step's count. Former systems do not
    say whether a report was transferred or a duplicate, nor whether it was done twice."""
    procedure = catalogue.get(event.procedure, event.procedure_version)
    if not is_reports(catalogue.latest(event.procedure)) or procedure is None:
        return
    submitted, last = event.timeline[0].at, event.timeline[-1]
    deadline = _commitment(event.legal_deadline, procedure, submitted)
    outcome = {"accepted": Outcome.ACCEPTED, "rejected": Outcome.REJECTED}.get(last.outcome or "")
    final = next((s.code for s in procedure.steps if outcome and s.outcome is outcome), None)
    done = outcome is Outcome.ACCEPTED
    inserted = await _insert(
        conn,
        event,
        submitted,
        deadline,
        final_step=final or ("withdrawn" if last.outcome == "withdrawn" else None),
        first_done_at=last.at if done else None,
        done_in_time=(deadline is None or city_day(last.at) <= deadline) if done else None,
    )
    if inserted and final is not None:
        await _entered_final(conn, event.case_id, final, last.at)


def _commitment(given: date | None, version: Procedure | None, submitted_at: datetime) -> date | None:
    """The commitment date the event gives, else the one its version's rule sets from the day of submission."""
    if given is None and version is not None and version.legal_deadline is not None:
        return version.legal_deadline.due(city_day(submitted_at))
    return given


async def _insert(
    conn: asyncpg.Connection,
    event: CaseSubmitted | CaseImported,
    submitted_at: datetime,
    deadline: date | None,
    *,
    final_step: str | None = None,
    first_done_at: datetime | None = None,
    done_in_time: bool | None = None,
) -> bool:
    """The report's row, with its category and district from the event's public facts; false if it was
    there already (a redelivery)."""
    inserted = await conn.fetchval(
        "INSERT INTO stats.reports(case_id, procedure, category, district, submitted_at, legal_deadline, "
        "final_step, first_done_at, done_in_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
        "ON CONFLICT (case_id) DO NOTHING RETURNING true",
        event.case_id,
        event.procedure,
        str(event.facts.get(CATEGORY) or ""),
        str(event.facts.get(DISTRICT) or ""),
        submitted_at,
        deadline,
        final_step,
        first_done_at,
        done_in_time,
    )
    return bool(inserted)


async def _entered_final(conn: asyncpg.Connection, case_id: UUID, step: str, at: datetime) -> None:
    """The report's first entry into a final step (a later one into the same step changes nothing)."""
    await conn.execute(
        "INSERT INTO stats.report_finals(case_id, step, entered_at) VALUES ($1, $2, $3) "
        "ON CONFLICT (case_id, step) DO NOTHING",
        case_id,
        step,
        at,
    )


async def step_changed(
    conn: asyncpg.Connection,
    event: StepChanged,
    *,
    legal_deadline: date | None,
    first_done_at: datetime | None,
) -> None:
    """The report moved; called once per step change of a report, in version order, with its row's
    commitment date and first "done" (read with the case's row, `projection.CASE_AND_REPORT`)."""
    deadline = event.legal_deadline or legal_deadline
    first_done = event.outcome == Outcome.ACCEPTED and first_done_at is None
    in_time = None if deadline is None else city_day(event.at) <= deadline
    await conn.execute(
        "UPDATE stats.reports SET final_step = $2, legal_deadline = $3, "
        "first_done_at = CASE WHEN $4 THEN $5 ELSE first_done_at END, "
        "done_in_time = CASE WHEN $4 THEN $6 ELSE done_in_time END WHERE case_id = $1",
        event.case_id,
        event.to_step if event.outcome else None,
        deadline,
        first_done,
        event.at,
        in_time,
    )
    if event.outcome:
        await _entered_final(conn, event.case_id, event.to_step, event.at)


async def fix_checked(conn: asyncpg.Connection, envelope: Envelope, event: FixChecked) -> None:
    """The reporter's answer, once per "done" it answers (a second answer to the same one changes nothing)."""
    known = await conn.fetchval(
        "SELECT r.case_id IS NOT NULL FROM stats.cases AS c "
        "LEFT JOIN stats.reports AS r USING (case_id) WHERE c.case_id = $1",
        event.case_id,
    )
    if known is None:
        raise Nak("the case is not folded yet")
    if not known:
        log.warning(
            "a fix check for a case that is not a street report", extra={"case_id": str(event.case_id)}
        )
        return
    await conn.execute(
        "INSERT INTO stats.report_fix_checks(case_id, done_version, fixed, checked_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (case_id, done_version) DO NOTHING",
        event.case_id,
        event.done_version,
        event.fixed,
        event.checked_at,
    )
