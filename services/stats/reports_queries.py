"""The street reports' read-side SQL: what `reports_figures.Facts` holds for a procedure over some months,
for one category and district or all, each figure counted in its own month (city time):

- received: the month of submission;
- the final steps: the month the report first entered each;
- time to done, within the commitment: the month of the report's first "done";
- confirmed fixed: the month of the reporter's answer;
- open now: whatever the months.

The independent reads go on a few connections at once.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time

import asyncpg

from services.stats import domain
from services.stats.reports_figures import Done, Facts, Key, Open
from shared.procedures import CITY_TIMEZONE

ZONE = CITY_TIMEZONE.key
# `$1` procedure, `$2` and `$3` the instants the months start and end, `$4` category, `$5` district.
_WHERE = (
    "r.procedure = $1 AND ($4::text IS NULL OR r.category = $4) AND ($5::text IS NULL OR r.district = $5)"
)


def _month(column: str) -> str:
    return f"date_trunc('month', {column} AT TIME ZONE '{ZONE}')::date"


RECEIVED = (
    f"SELECT {_month('r.submitted_at')} AS month, r.category, r.district, count(*) AS n "
    f"FROM stats.reports AS r WHERE {_WHERE} AND r.submitted_at >= $2 AND r.submitted_at < $3 "
    "GROUP BY 1, 2, 3"
)
FINALS = (
    f"SELECT {_month('f.entered_at')} AS month, r.category, r.district, f.step, count(*) AS n "
    "FROM stats.report_finals AS f JOIN stats.reports AS r USING (case_id) "
    f"WHERE {_WHERE} AND f.entered_at >= $2 AND f.entered_at < $3 GROUP BY 1, 2, 3, 4"
)
DONE = (
    f"SELECT {_month('r.first_done_at')} AS month, r.category, r.district, r.done_in_time, "
    "extract(epoch FROM r.first_done_at - r.submitted_at)::float8 AS seconds FROM stats.reports AS r "
    f"WHERE {_WHERE} AND r.first_done_at >= $2 AND r.first_done_at < $3"
)
CHECKS = (
    f"SELECT {_month('c.checked_at')} AS month, r.category, r.district, "
    "count(*) FILTER (WHERE c.fixed) AS fixed, count(*) AS answers "
    "FROM stats.report_fix_checks AS c JOIN stats.reports AS r USING (case_id) "
    f"WHERE {_WHERE} AND c.checked_at >= $2 AND c.checked_at < $3 GROUP BY 1, 2, 3"
)
OPEN = (
    "SELECT r.category, r.district, extract(epoch FROM $2 - r.submitted_at)::float8 AS seconds "
    "FROM stats.reports AS r WHERE r.procedure = $1 AND r.final_step IS NULL "
    "AND ($3::text IS NULL OR r.category = $3) AND ($4::text IS NULL OR r.district = $4)"
)


def _key(row: asyncpg.Record) -> Key:
    return Key(row["month"], row["category"], row["district"])


async def facts(
    pool: asyncpg.Pool,
    *,
    procedure: str,
    first: date,
    last: date,
    category: str | None = None,
    district: str | None = None,
    now: datetime,
) -> Facts:
    """What the figures of the months `first` to `last` need (and the reports open `now`)."""
    start = datetime.combine(first, time(0), tzinfo=CITY_TIMEZONE)
    args = (procedure, start, domain.month_end(last), category, district)
    received, finals, done, checks, open_ = await asyncio.gather(
        pool.fetch(RECEIVED, *args),
        pool.fetch(FINALS, *args),
        pool.fetch(DONE, *args),
        pool.fetch(CHECKS, *args),
        pool.fetch(OPEN, procedure, now, category, district),
    )
    return Facts(
        received={_key(r): r["n"] for r in received},
        finals={(_key(r), r["step"]): r["n"] for r in finals},
        done=[Done(_key(r), max(0.0, r["seconds"]), r["done_in_time"]) for r in done],
        checks={_key(r): (r["fixed"], r["answers"]) for r in checks},
        open=[Open(r["category"], r["district"], max(0.0, r["seconds"])) for r in open_],
    )


async def first_month(pool: asyncpg.Pool, procedure: str) -> date | None:
    """The month of the procedure's first report."""
    first: datetime | None = await pool.fetchval(
        "SELECT min(submitted_at) FROM stats.reports WHERE procedure = $1", procedure
    )
    return domain.month_of(first) if first else None
