"""stats' read-side SQL: the aggregates of one procedure and district over a range of months."""

from __future__ import annotations

from datetime import date

import asyncpg

from services.stats.report import Aggregates


async def aggregates(
    pool: asyncpg.Pool, *, procedure: str, first: date, last: date, district: str
) -> Aggregates:
    """Rows of aggregates (their number depends on months and bins, never on how many events there were),
    and the submission times of the cases still open."""
    data = Aggregates()
    args = (procedure, district, first, last)
    where = "procedure = $1 AND district = $2 AND month BETWEEN $3 AND $4"
    async with pool.acquire() as conn:
        for row in await conn.fetch(f"SELECT month, measure, n FROM stats.counts WHERE {where}", *args):
            data.counts[(row["month"], row["measure"])] = row["n"]
        for row in await conn.fetch(f"SELECT month, measure, bin, n FROM stats.bins WHERE {where}", *args):
            data.bins[(row["month"], row["measure"])][row["bin"]] = row["n"]
        for row in await conn.fetch(f"SELECT month, measure, total FROM stats.sums WHERE {where}", *args):
            data.sums[(row["month"], row["measure"])] = row["total"]
        rows = await conn.fetch(
            "SELECT submitted_at FROM stats.cases WHERE procedure = $1 AND decided_at IS NULL "
            "AND ($2 = '' OR district = $2)",
            procedure,
            district,
        )
    data.open_since = [r["submitted_at"] for r in rows]
    return data


async def first_month(pool: asyncpg.Pool, procedure: str) -> date | None:
    month: date | None = await pool.fetchval(
        "SELECT min(month) FROM stats.counts WHERE procedure = $1 AND district = ''", procedure
    )
    return month
