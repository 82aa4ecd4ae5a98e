"""stats' read-side SQL: the aggregates of procedures over months, for one district or all.

A query reads rows of aggregates, never cases, but the open ones for the month under way: each month's
bins of a measure come back as one row (arrays, in the index's order); a period of many months reads the
running totals at its ends (`domain.running_span`); the cases still open are aged in PostgreSQL, for the
months whose end the fold has not sealed yet only, with `domain.bin_floors_us`, so exactly as `bin_of`
would. The independent reads go on a few connections at once.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import asyncpg

from services.stats import domain
from services.stats.domain import Sketch
from services.stats.report import Aggregates, Period

# The durations the published figures read, and those the forecast reads: measures, or prefixes of them.
FIGURES = ("elapsed", "legal", "step:")
FORECAST = ("remaining:", "step:")
_CELLS = "procedure = ANY($1) AND district = $2 AND month BETWEEN $3 AND $4"
_SKETCH = "array_agg(bin ORDER BY bin) AS bins, array_agg(n ORDER BY bin) AS counts"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


async def aggregates(
    pool: asyncpg.Pool,
    *,
    procedure: str,
    district: str,
    periods: Sequence[Period],
    now: datetime,
    measures: Sequence[str] = FIGURES,
    backlog: Sequence[date] | None = None,
) -> Aggregates:
    """What the figures of `periods` need: see `aggregates_of`."""
    found = await aggregates_of(
        pool,
        procedures=[procedure],
        district=district,
        periods=periods,
        now=now,
        measures=measures,
        backlog=backlog,
    )
    return found[procedure]


async def aggregates_of(
    pool: asyncpg.Pool,
    *,
    procedures: Sequence[str],
    district: str,
    periods: Sequence[Period],
    now: datetime,
    measures: Sequence[str] = FIGURES,
    backlog: Sequence[date] | None = None,
) -> dict[str, Aggregates]:
    """Each procedure's counts, sums and `measures` over the periods' months (long periods from running
    totals), and its backlog at the end of each month of `backlog` (by default, each period's last)."""
    ends = sorted({p.months[-1] for p in periods} if backlog is None else set(backlog))
    months = sorted({m for p in periods for m in p.months} | set(ends))
    codes = list(procedures)
    data = {code: Aggregates() for code in codes}
    for row in await pool.fetch(
        "SELECT procedure, through FROM stats.sealed_months WHERE procedure = ANY($1)", codes
    ):
        data[row["procedure"]].sealed = row["through"]
    monthly: set[date] = set()
    to_date: set[date] = set()
    for period in periods:
        for sealed in {d.sealed for d in data.values()}:
            span = domain.running_span(period.months, sealed=sealed)
            monthly.update(m for m in period.months if span is None or m > span[1])
            to_date.update(span or ())
    # Three connections at once: the durations, the open cases' ages, and the rest.
    await asyncio.gather(
        _durations(pool, data, district, months=sorted(monthly), to_date=sorted(to_date), measures=measures),
        _live(pool, data, district=district, months=ends, now=now),
        _counts(pool, data, (codes, district, months[0], months[-1]), ends=ends),
    )
    return data


async def _counts(
    pool: asyncpg.Pool,
    data: dict[str, Aggregates],
    cells: tuple[list[str], str, date, date],
    *,
    ends: list[date],
) -> None:
    async with pool.acquire() as conn:
        for row in await conn.fetch(
            f"SELECT procedure, month, measure, n FROM stats.counts WHERE {_CELLS}", *cells
        ):
            data[row["procedure"]].counts[(row["month"], row["measure"])] = row["n"]
        for row in await conn.fetch(
            f"SELECT procedure, month, measure, total FROM stats.sums WHERE {_CELLS}", *cells
        ):
            data[row["procedure"]].sums[(row["month"], row["measure"])] = row["total"]
        for row in await conn.fetch(_sketches_sql("bins", ("backlog_age",)), cells[0], cells[1], ends):
            data[row["procedure"]].backlog_ages[row["month"]] = Sketch(row["bins"], row["counts"])


async def _durations(
    pool: asyncpg.Pool,
    data: dict[str, Aggregates],
    district: str,
    *,
    months: list[date],
    to_date: list[date],
    measures: Sequence[str],
) -> None:
    running = tuple(m for m in measures if domain.is_running(m))
    async with pool.acquire() as conn:
        if months:
            for row in await conn.fetch(_sketches_sql("bins", tuple(measures)), list(data), district, months):
                data[row["procedure"]].durations[(row["month"], row["measure"])] = Sketch(
                    row["bins"], row["counts"]
                )
        if to_date and running:
            for row in await conn.fetch(
                _sketches_sql("bins_to_date", running), list(data), district, to_date
            ):
                data[row["procedure"]].to_date[(row["month"], row["measure"])] = Sketch(
                    row["bins"], row["counts"]
                )


@functools.cache
def _sketches_sql(table: str, measures: tuple[str, ...]) -> str:
    """Each month's bins of `measures` (a name, or a prefix ending in ':'), a row per month and measure.
    A prefix is a constant of the statement, so that PostgreSQL can read it as a range of the index."""
    wanted = [f"measure = '{m}'" if not m.endswith(":") else f"measure LIKE '{m}%'" for m in measures]
    return " UNION ALL ".join(
        f"SELECT procedure, month, measure, {_SKETCH} FROM stats.{table} "
        f"WHERE procedure = ANY($1) AND district = $2 AND month = ANY($3) AND {condition} "
        "GROUP BY procedure, month, measure"
        for condition in wanted
    )


async def _live(
    pool: asyncpg.Pool, data: dict[str, Aggregates], *, district: str, months: list[date], now: datetime
) -> None:
    """The ages of the cases still open, for each month whose backlog the fold has not sealed yet."""
    wanted: dict[tuple[str, datetime], list[date]] = {}
    for code, aggregates in data.items():
        for month in months:
            if (end := domain.live_end(month, sealed=aggregates.sealed, now=now)) is not None:
                wanted.setdefault((code, end), []).append(month)
    keys = list(wanted)
    # In two halves at once when there are several procedures: this is most of a query's work.
    for found in await asyncio.gather(
        *(_ages(pool, half, district) for half in (keys[0::2], keys[1::2]) if half)
    ):
        for (code, end), sketch in found.items():
            for month in wanted[(code, end)]:
                data[code].live[month] = sketch


async def _ages(
    pool: asyncpg.Pool, keys: list[tuple[str, datetime]], district: str
) -> dict[tuple[str, datetime], Sketch]:
    ages: dict[int, dict[int, int]] = {}
    async with pool.acquire() as conn:
        for row in await conn.fetch(
            _live_sql(),
            [code for code, _ in keys],
            [end for _, end in keys],
            [(end - EPOCH) // MICROSECOND for _, end in keys],
            district,
        ):
            ages.setdefault(row["i"], {})[row["bin"]] = row["n"]
    return {key: Sketch.of(ages.get(i, {})) for i, key in enumerate(keys, start=1)}


@functools.cache
def _live_sql() -> str:
    """Each open case's age at each end, in whole microseconds, binned by `domain.bin_floors_us` (a
    constant of the statement, which is prepared once per connection)."""
    floors = ",".join(map(str, domain.bin_floors_us()))
    return (
        f"SELECT e.i, width_bucket(e.end_us - c.submitted_us, '{{{floors}}}'::bigint[]) AS bin, count(*) AS n "
        "FROM unnest($1::text[], $2::timestamptz[], $3::bigint[]) WITH ORDINALITY AS e(procedure, end_at, end_us, i) "
        "JOIN stats.cases AS c ON c.procedure = e.procedure AND c.decided_at IS NULL "
        "AND c.submitted_at < e.end_at AND ($4 = '' OR c.district = $4) "
        "GROUP BY e.i, bin"
    )


async def open_cases(pool: asyncpg.Pool, procedure: str) -> int:
    """How many of the procedure's cases are open now (the backlog, not the history: they are few)."""
    n: int = await pool.fetchval(
        "SELECT count(*) FROM stats.cases WHERE procedure = $1 AND decided_at IS NULL", procedure
    )
    return n


async def first_month(pool: asyncpg.Pool, procedure: str) -> date | None:
    month: date | None = await pool.fetchval(
        "SELECT min(month) FROM stats.counts WHERE procedure = $1 AND district = ''", procedure
    )
    return month
