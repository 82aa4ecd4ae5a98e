"""The month ends the fold has seen pass, per procedure (`stats.sealed_months`).

A fold that opens or closes a case, or adds a step's duration, first reads the procedure's last sealed
month, under a lock shared by such folds. Dated after the next month end, it takes the lock alone and
seals the months ended meanwhile: the cases still open join their backlog (ages at each month end), and
each gets its running totals (`bins_to_date`: the bins of `domain.RUNNING` of every month until then).
From then on the folds keep both right (`cells.Cell`, `projection._closed`), whatever order events come
in, and a query reads a sealed month's backlog as it is instead of ageing every open case.
"""

from __future__ import annotations

from datetime import date, datetime

import asyncpg

from services.stats import domain
from services.stats.cells import Backlog

SEALED = "SELECT through FROM stats.sealed_months WHERE procedure = $1 AND through >= $2 FOR SHARE"
SEALING = (
    "INSERT INTO stats.sealed_months(procedure) VALUES ($1) ON CONFLICT (procedure) "
    "DO UPDATE SET through = stats.sealed_months.through RETURNING through"
)
SEALED_NOW = "UPDATE stats.sealed_months SET through = $2 WHERE procedure = $1"
STILL_OPEN = (
    "SELECT district, submitted_at FROM stats.cases "
    "WHERE procedure = $1 AND decided_at IS NULL AND submitted_at < $2"
)
FIRST_MONTH = "SELECT min(month) FROM stats.bins WHERE procedure = $1"
_RUNNING = " OR ".join(
    f"measure LIKE '{m}%'" if m.endswith(":") else f"measure = '{m}'" for m in domain.RUNNING
)
# A month's running totals: the previous month's, and its own bins.
RUNNING_MONTH = (
    "INSERT INTO stats.bins_to_date(procedure, district, measure, month, bin, n) "
    "SELECT procedure, district, measure, $2, bin, sum(n) FROM ("
    "SELECT procedure, district, measure, bin, n FROM stats.bins_to_date WHERE procedure = $1 AND month = $3 "
    "UNION ALL SELECT procedure, district, measure, bin, n FROM stats.bins "
    f"WHERE procedure = $1 AND month = $2 AND ({_RUNNING})) AS until_then "
    "GROUP BY procedure, district, measure, bin"
)


async def sealed_through(conn: asyncpg.Connection, procedure: str, *, at: datetime) -> date:
    """The last month of the procedure the fold has seen end, once the months ended by `at` are sealed.

    Locks the procedure's row until the fold commits: shared by the folds that read it, alone while a
    month is sealed, so that no case or duration is counted twice or missed."""
    ended = domain.previous_month(domain.month_of(at))
    sealed: date | None = await conn.fetchval(SEALED, procedure, ended)
    if sealed is not None:
        return sealed
    # The row is locked alone from here (and made, for a procedure's first event).
    sealed = await conn.fetchval(SEALING, procedure)
    if sealed is not None and sealed >= ended:
        return sealed  # another fold sealed them meanwhile
    await _seal(conn, procedure, after=sealed, through=ended)
    return ended


async def _seal(conn: asyncpg.Connection, procedure: str, *, after: date | None, through: date) -> None:
    """The months after `after` up to `through`: the cases still open join their backlog, and they get
    their running totals."""
    first = domain.next_month(after) if after else None
    backlog = Backlog(procedure)
    for row in await conn.fetch(STILL_OPEN, procedure, domain.month_end(through)):
        since = row["submitted_at"]
        backlog.open_at(
            row["district"],
            since,
            domain.months_between(max(domain.month_of(since), first or date.min), through),
        )
    await backlog.write(conn)
    start = first or await conn.fetchval(FIRST_MONTH, procedure)
    for month in domain.months_between(start, through) if start else []:
        await conn.execute(RUNNING_MONTH, procedure, month, domain.previous_month(month))
    await conn.execute(SEALED_NOW, procedure, through)
