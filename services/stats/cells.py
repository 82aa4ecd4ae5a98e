"""The aggregate rows a fold adds to: a procedure × month × district's counts, duration bins and sums (and
every district's together, district ''), the backlog at month ends, and the running totals of durations.

A count or a bin goes up by the number given (`n + EXCLUDED.n`), so that what a fold adds up first is
written in one row; a backlog taken back is the only removal, and leaves no row at zero behind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime

import asyncpg

from services.stats import domain

COUNT = (
    "INSERT INTO stats.counts(procedure, month, district, measure, n) VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT (procedure, month, district, measure) DO UPDATE SET n = stats.counts.n + EXCLUDED.n"
)
BIN = (
    "INSERT INTO stats.bins(procedure, month, district, measure, bin, n) VALUES ($1, $2, $3, $4, $5, $6) "
    "ON CONFLICT (procedure, month, district, measure, bin) DO UPDATE SET n = stats.bins.n + EXCLUDED.n"
)
SUM = (
    "INSERT INTO stats.sums(procedure, month, district, measure, n, total) "
    "VALUES ($1, $2, $3, $4, 1, $5) ON CONFLICT (procedure, month, district, measure) "
    "DO UPDATE SET n = stats.sums.n + 1, total = stats.sums.total + EXCLUDED.total"
)
# A bin of a running duration, added to the running totals of its month and of the sealed months after.
TO_DATE = (
    "INSERT INTO stats.bins_to_date(procedure, district, measure, month, bin, n) "
    "SELECT $1, $2, $3, month, $4, $5 FROM unnest($6::date[]) AS month "
    "ON CONFLICT (procedure, district, month, measure, bin) DO UPDATE SET n = stats.bins_to_date.n + EXCLUDED.n"
)


def districts(district: str) -> tuple[str, ...]:
    """Every district together (''), and the case's own."""
    return ("", district) if district else ("",)


def seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())


class Cell:
    """The aggregates one case adds to: its district's and every district's together. `sealed`: the last
    month sealed (read under its lock): a running duration of that month or before is added to the
    running totals too."""

    def __init__(self, procedure: str, district: str, *, sealed: date | None = None) -> None:
        self.procedure, self.district, self.sealed = procedure, district, sealed
        self.districts = districts(district)

    async def count(self, conn: asyncpg.Connection, month: date, measure: str) -> None:
        await conn.executemany(COUNT, [(self.procedure, month, d, measure, 1) for d in self.districts])

    async def duration(
        self, conn: asyncpg.Connection, month: date, measure: str, seconds: float, *, with_sum: bool = True
    ) -> None:
        bin_ = domain.bin_of(seconds)
        await conn.executemany(BIN, [(self.procedure, month, d, measure, bin_, 1) for d in self.districts])
        if self.sealed is not None and month <= self.sealed and domain.is_running(measure):
            months = domain.months_between(month, self.sealed)
            await conn.executemany(
                TO_DATE, [(self.procedure, d, measure, bin_, 1, months) for d in self.districts]
            )
        if with_sum:
            await self.add(conn, month, measure, seconds)

    async def add(self, conn: asyncpg.Connection, month: date, measure: str, value: float) -> None:
        await conn.executemany(SUM, [(self.procedure, month, d, measure, value) for d in self.districts])

    async def backlog(
        self, conn: asyncpg.Connection, since: datetime, months: Iterable[date], *, remove: bool = False
    ) -> None:
        """The case, open since `since`, in (or out of) the backlog at the end of `months`."""
        backlog = Backlog(self.procedure)
        backlog.open_at(self.district, since, months)
        await (backlog.remove(conn) if remove else backlog.write(conn))


class Backlog:
    """Cases open at month ends, added up before they are written: how many (`open_at_end`) and how old
    (`backlog_age` bins), per month and district."""

    def __init__(self, procedure: str) -> None:
        self.procedure = procedure
        self.ages: Counter[tuple[date, str, int]] = Counter()

    def open_at(self, district: str, since: datetime, months: Iterable[date]) -> None:
        for month in months:
            bin_ = domain.bin_of(seconds(since, domain.month_end(month)))
            for d in districts(district):
                self.ages[(month, d, bin_)] += 1

    def _counts(self) -> list[tuple[str, date, str, str, int]]:
        counts: Counter[tuple[date, str]] = Counter()
        for (month, district, _), n in self.ages.items():
            counts[(month, district)] += n
        return [(self.procedure, m, d, "open_at_end", n) for (m, d), n in sorted(counts.items())]

    def _bins(self) -> list[tuple[str, date, str, str, int, int]]:
        return [(self.procedure, m, d, "backlog_age", b, n) for (m, d, b), n in sorted(self.ages.items())]

    async def write(self, conn: asyncpg.Connection) -> None:
        if self.ages:
            await conn.executemany(COUNT, self._counts())
            await conn.executemany(BIN, self._bins())

    async def remove(self, conn: asyncpg.Connection) -> None:
        """Takes the cases out again (rows left at zero are deleted, as if never written)."""
        if not self.ages:
            return
        where = "procedure = $1 AND month = $2 AND district = $3 AND measure = $4"
        counts, bins = self._counts(), self._bins()
        await conn.executemany(f"UPDATE stats.counts SET n = n - $5 WHERE {where}", counts)
        await conn.executemany(f"DELETE FROM stats.counts WHERE {where} AND n = 0", [c[:4] for c in counts])
        await conn.executemany(f"UPDATE stats.bins SET n = n - $6 WHERE {where} AND bin = $5", bins)
        await conn.executemany(
            f"DELETE FROM stats.bins WHERE {where} AND bin = $5 AND n = 0", [b[:5] for b in bins]
        )
