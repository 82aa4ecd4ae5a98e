"""The SQL of tracking's Open311 requests: street reports from the read model, filtered as the spec says.

Only what the read model holds publicly is read: the procedure and its version, the step and its date, the
outcome, the service, the public facts (category, district, H3 cell) and the report it duplicates.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from shared.open311 import Open311Service

COLUMNS = (
    "case_id, procedure, procedure_version, step, step_since, submitted_at, outcome, service, facts, "
    "duplicate_of"
)


@dataclass
class Filters:
    """What `GET requests` asks for; None is no filter."""

    # The (procedure, version) pairs Open311 serves: those whose place publishes its district.
    located: list[tuple[str, int]]
    # "procedure/version/step" of every final step: a case there is closed even before an outcome.
    finals: list[str]
    ids: list[uuid.UUID] | None = None
    services: list[Open311Service] | None = None
    start: datetime | None = None
    end: datetime | None = None
    statuses: set[str] | None = None
    limit: int = 1000


class _Arguments(list[Any]):
    """The query's arguments: each value added is named by its placeholder (`$3`)."""

    def __call__(self, value: Any) -> str:
        self.append(value)
        return f"${len(self)}"


def _closed(f: Filters, arg: _Arguments) -> str:
    final = f"procedure || '/' || procedure_version || '/' || step = ANY({arg(f.finals)}::text[])"
    return f"(outcome IS NOT NULL OR {final})"


def _of_services(services: list[Open311Service], arg: _Arguments) -> str:
    each = [
        f"(procedure = {arg(s.procedure)} AND facts->>{arg(s.field)} = {arg(s.value)})"
        if s.field is not None
        else f"procedure = {arg(s.procedure)}"
        for s in services
    ]
    return "(" + " OR ".join(each) + ")"


def _where(f: Filters, arg: _Arguments) -> str:
    names, versions = [p for p, _ in f.located], [v for _, v in f.located]
    clauses = [
        f"(procedure, procedure_version) IN (SELECT * FROM unnest({arg(names)}::text[], {arg(versions)}::int[]))",
        # A report of a kind that could point at a person (`sensitive` in its definition) has no public
        # cell, and is not listed: harassment, night-time noise.
        "facts->>'cell' IS NOT NULL",
    ]
    if f.ids is not None:
        clauses.append(f"case_id = ANY({arg(f.ids)}::uuid[])")
    if f.services is not None:
        clauses.append(_of_services(f.services, arg))
    if f.start is not None:
        clauses.append(f"submitted_at >= {arg(f.start)}")
    if f.end is not None:
        clauses.append(f"submitted_at <= {arg(f.end)}")
    if f.statuses is not None and len(f.statuses) == 1:
        closed = _closed(f, arg)
        clauses.append(closed if "closed" in f.statuses else f"NOT {closed}")
    return " AND ".join(clauses)


async def find_requests(pool: asyncpg.Pool, filters: Filters) -> list[dict[str, Any]]:
    """The newest reports first, at most `filters.limit`."""
    arg = _Arguments()
    where = _where(filters, arg)
    rows = await pool.fetch(
        f"SELECT {COLUMNS} FROM tracking.cases WHERE {where} "
        f"ORDER BY submitted_at DESC, case_id LIMIT {arg(filters.limit)}",
        *arg,
    )
    return [dict(r) for r in rows]
