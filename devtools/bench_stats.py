"""stats in `make bench`: whether its queries cost the same at 1M events as at 10k (its fold speed is
devtools/bench_fold.py's).

Query time at 10k and at 1M events. Two histories of `devtools/history.py` over the same 18 months, the
   second with 100 times the monthly load (a bigger city, not a longer past: every month, and the cases
   still open, grow 100 times), each turned into the
   `CaseImported` events intake's historical import records (its own `parse`): one event per past case,
   carrying the case's whole timeline (submitted, maybe asked for documents and replied, decided unless
   still open). stats folds some thousands of events/s through the bus, so 1M events through the live
   consumer would take most of the bench's ten minutes; instead:
   - the small history is folded one event per transaction through `shared.projection.fold` with stats'
     own handlers (`consumers.HANDLERS`): the consumer's write path without NATS. This is the reference.
   - both histories are folded by the same handlers on `BulkFold`, which stands in for their connection
     and does in bulk what their statements do (adds up the counters, COPYs the rows). The small history
     folded that way must give exactly the reference's tables, checked on every run, or the bench stops.
   Both measured databases are built by the bulk path (the same physical layout), vacuumed and analysed;
   each is served by its own stats process (uvicorn, as the other services), on a NATS of its own so that
   its consumer has nothing to fold. Each query is sent 200 times to each, alternately, over keep-alive
   HTTP from one httpx client, after a warm-up; the ratio is the 1M median over the 10k median.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from devtools.history import generate
from devtools.servers import NatsServer, UvicornProcess
from services.intake.imports import Summary, parse
from services.stats import domain
from services.stats.consumers import CONSUMER, HANDLERS
from services.stats.projection import SCHEMA, TABLES
from shared.db import create_pool, migrate
from shared.events import Envelope, EventData, make_envelope
from shared.events.intake import CaseImported
from shared.procedures import Catalogue, load_catalogue
from shared.projection import fold
from shared.settings import DEFAULT_PROCEDURES_DIR

IMPORTED = "case.*.*.imported"
MONTHS = 18
REPETITIONS = 200
WARM_UP = 10
RATIO_TARGET = 1.5
SERIES_PROCEDURE = "permis-construire"
MIGRATIONS = Path(domain.__file__).parent / "migrations"
COPY_EVERY = 50_000  # rows kept in memory before they are copied


# --- 2a. histories, as the events intake's import records --------------------------------------------

Folded = tuple[Envelope, CaseImported]
Event = tuple[Envelope, EventData]  # what the folds take: any event stats has a handler for


def _scale_for(catalogue: Catalogue, events: int, *, now: datetime) -> float:
    """The load factor that gives a history of about `events` past cases (one event each)."""
    return events / len(generate(catalogue, months=MONTHS, scale=1.0, now=now))


def history(catalogue: Catalogue, *, scale: float, now: datetime) -> Iterator[Folded]:
    """`devtools/history.py`'s past cases as intake's import turns them into events (its own `parse`),
    each in the envelope intake's import gives it; the cases are let go of as they are turned."""
    cases = generate(catalogue, months=MONTHS, scale=scale, now=now)
    cases.reverse()

    def lines() -> Iterator[tuple[int, str]]:
        number = 0
        while cases:
            number += 1
            yield number, json.dumps(cases.pop())

    summary = Summary()
    for event, _ in parse(lines(), catalogue, summary):
        yield (
            make_envelope(event, case_id=event.case_id, procedure=event.procedure, at=event.timeline[0].at),
            event,
        )
    if summary.rejected:
        raise RuntimeError(f"intake's import rejects lines of the generated history: {summary.rejected[:3]}")


# --- 2b. folding them: one event per transaction (the reference), or in bulk -------------------------


async def fold_each(pool: asyncpg.Pool, events: Iterable[Event]) -> int:
    """Fold as stats' consumer does, without NATS: `shared.projection.fold`, one event per transaction."""
    seq = 0
    for seq, (envelope, event) in enumerate(events, start=1):

        async def change(conn: asyncpg.Connection, envelope: Envelope = envelope, event: Any = event) -> None:
            if apply := HANDLERS.get(type(event)):
                await apply(conn, envelope, event)

        await fold(
            pool, schema=SCHEMA, consumer=CONSUMER, event_id=envelope.id, stream_seq=seq, change=change
        )
    return seq


class UnknownStatement(RuntimeError):
    """A statement `BulkFold` does not know how to do in bulk: the handlers changed, so must it."""


@dataclass(frozen=True)
class _Upsert:
    """One of the aggregate upserts `cells` sends: a count's or a bin's n goes up by the last
    argument; a sum's n by 1 and its total by the last argument."""

    table: str
    key: tuple[str, ...]  # the first arguments, in this order
    adds_total: bool

    @property
    def columns(self) -> list[str]:
        return [*self.key, "n", *(["total"] if self.adds_total else [])]

    @property
    def statement(self) -> str:
        """The statement, exactly as the handlers send it."""
        values = [f"${n}" for n in range(1, len(self.key) + 1)]
        if self.adds_total:
            values += ["1", f"${len(self.key) + 1}"]
            update = f"n = {self.table}.n + 1, total = {self.table}.total + EXCLUDED.total"
        else:
            values.append(f"${len(self.key) + 1}")
            update = f"n = {self.table}.n + EXCLUDED.n"
        return (
            f"INSERT INTO {self.table}({', '.join(self.columns)}) VALUES ({', '.join(values)}) "
            f"ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET {update}"
        )


CELL = ("procedure", "month", "district", "measure")
_UPSERTS = {
    upsert.table: upsert
    for upsert in (
        _Upsert("stats.counts", CELL, adds_total=False),
        _Upsert("stats.bins", (*CELL, "bin"), adds_total=False),
        _Upsert("stats.sums", CELL, adds_total=True),
    )
}
_NEW_CASE = re.compile(
    r"INSERT INTO stats\.cases\((?P<columns>[a-z_, ]+)\) VALUES \((?P<values>[^)]+)\) "
    r"ON CONFLICT \(case_id\) DO NOTHING RETURNING true"
)
# The months sealed (`month_ends.sealed_through`): read under a lock, locked to seal, moved on.
_SEALED = "SELECT through FROM stats.sealed_months WHERE procedure = $1 AND through >= $2 FOR SHARE"
_SEALING = (
    "INSERT INTO stats.sealed_months(procedure) VALUES ($1) ON CONFLICT (procedure) "
    "DO UPDATE SET through = stats.sealed_months.through RETURNING through"
)
_SEALED_NOW = "UPDATE stats.sealed_months SET through = $2 WHERE procedure = $1"
_STILL_OPEN = (
    "SELECT district, submitted_at FROM stats.cases "
    "WHERE procedure = $1 AND decided_at IS NULL AND submitted_at < $2"
)
# The running totals of the durations (`bins_to_date`): a sealed month's, and a later fold's additions to
# them. They are the bins of every month until then, so they are worked out from the bins at the end.
_FIRST_MONTH = "SELECT min(month) FROM stats.bins WHERE procedure = $1"
_RUNNING_MONTH = (
    "INSERT INTO stats.bins_to_date(procedure, district, measure, month, bin, n) "
    "SELECT procedure, district, measure, $2, bin, sum(n) FROM ("
    "SELECT procedure, district, measure, bin, n FROM stats.bins_to_date WHERE procedure = $1 AND month = $3 "
    "UNION ALL SELECT procedure, district, measure, bin, n FROM stats.bins "
    "WHERE procedure = $1 AND month = $2 AND (measure = 'elapsed' OR measure = 'legal' OR measure LIKE 'step:%')) "
    "AS until_then GROUP BY procedure, district, measure, bin"
)
_TO_DATE = (
    "INSERT INTO stats.bins_to_date(procedure, district, measure, month, bin, n) "
    "SELECT $1, $2, $3, month, $4, $5 FROM unnest($6::date[]) AS month "
    "ON CONFLICT (procedure, district, month, measure, bin) DO UPDATE SET n = stats.bins_to_date.n + EXCLUDED.n"
)


class BulkFold:
    """Stands in for the connection stats' handlers write to, so that a long history folds in minutes.

    The handlers run unchanged; their statements are done here in bulk: a new case row is kept (once per
    case id, as ON CONFLICT DO NOTHING does) and copied by the 50,000; an upsert's `n + ...` and
    `total + value` are added up in memory, in the events' order (so every float sum is the same), and
    the totals are copied at the end; the months sealed, and the cases still open that a seal reads, are
    kept in memory; the running totals are worked out at the end from the bins (they are their sums over
    the months until each one sealed). It knows the statements folding `CaseImported` sends on an empty read
    model, and refuses any other. `fold_each` on the same events must give the same tables.
    """

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self._case_ids: set[uuid.UUID] = set()
        self._cases: list[tuple[Any, ...]] = []
        self._case_columns: list[str] = []
        self._open: dict[str, list[dict[str, Any]]] = {}  # per procedure: district, submitted_at
        self._sealed: dict[str, date | None] = {}
        self._folded: list[tuple[uuid.UUID, int]] = []
        self._added: dict[str, dict[tuple[Any, ...], list[Any]]] = {table: {} for table in _UPSERTS}
        self._last_seq = 0

    async def fold(self, events: Iterable[Event]) -> int:
        for seq, (envelope, event) in enumerate(events, start=self._last_seq + 1):
            self._folded.append((envelope.id, seq))  # `fold` records every event, changed or not
            self._last_seq = seq
            if apply := HANDLERS.get(type(event)):
                await apply(self, envelope, event)
            if len(self._folded) >= COPY_EVERY:
                await self._copy_rows()
        return self._last_seq

    async def finish(self) -> None:
        await self._copy_rows()
        for table, upsert in _UPSERTS.items():
            added = self._added[table]
            await self._copy(table, upsert.columns, [(*key, *so_far) for key, so_far in added.items()])
        await self._copy("stats.sealed_months", ["procedure", "through"], list(self._sealed.items()))
        await self._copy(
            "stats.bins_to_date",
            ["procedure", "district", "measure", "month", "bin", "n"],
            list(self._running_totals()),
        )
        await self._conn.execute(
            f"INSERT INTO {SCHEMA}.consumer_positions(consumer, stream_seq) VALUES ($1, $2)",
            CONSUMER,
            self._last_seq,
        )

    # What the handlers call.

    async def fetchval(self, sql: str, *args: Any) -> Any:
        if sql == _SEALED:
            through = self._sealed.get(args[0])
            return through if through is not None and through >= args[1] else None
        if sql == _SEALING:
            return self._sealed.setdefault(args[0], None)
        if sql == _FIRST_MONTH:
            return min((key[1] for key in self._added["stats.bins"] if key[0] == args[0]), default=None)
        match = _NEW_CASE.fullmatch(sql)
        if match is None:
            raise UnknownStatement(sql)
        if args[0] in self._case_ids:
            return None
        self._case_ids.add(args[0])
        self._case_columns = match["columns"].split(", ")
        row = tuple(_value(token, args) for token in match["values"].split(", "))
        self._cases.append(row)
        case = dict(zip(self._case_columns, row, strict=True))
        if case.get("decided_at") is None:
            self._open.setdefault(case["procedure"], []).append(
                {"district": case["district"], "submitted_at": case["submitted_at"]}
            )
        return True

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        if sql == _TO_DATE:
            return  # see `_running_totals`
        table = sql.removeprefix("INSERT INTO ").split("(", 1)[0]
        upsert = _UPSERTS.get(table)
        if upsert is None or sql != upsert.statement:
            raise UnknownStatement(sql)
        added, width = self._added[table], len(upsert.key)
        for row in rows:
            key = tuple(row[:width])
            so_far = added.setdefault(key, [0, 0.0] if upsert.adds_total else [0])
            if upsert.adds_total:
                so_far[0] += 1
                so_far[1] += row[width]
            else:
                so_far[0] += row[width]

    async def execute(self, sql: str, *args: Any) -> str:
        if sql == _RUNNING_MONTH:
            return "INSERT"  # see `_running_totals`
        if sql != _SEALED_NOW:
            raise UnknownStatement(sql)
        self._sealed[args[0]] = args[1]
        return "UPDATE 1"

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        if sql != _STILL_OPEN:
            raise UnknownStatement(sql)
        return [case for case in self._open.get(args[0], []) if case["submitted_at"] < args[1]]

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        raise UnknownStatement(sql)

    def _running_totals(self) -> Iterator[tuple[Any, ...]]:
        """Each bin of a running duration in every month from its first up to the procedure's last sealed
        one, with its count in the months until then."""
        bins: dict[tuple[str, str, str, int], dict[date, int]] = {}
        for (procedure, month, district, measure, bin_), (n,) in self._added["stats.bins"].items():
            if domain.is_running(measure):
                bins.setdefault((procedure, district, measure, bin_), {})[month] = n
        for (procedure, district, measure, bin_), counts in bins.items():
            through, total = self._sealed.get(procedure), 0
            if through is None or min(counts) > through:
                continue
            for month in domain.months_between(min(counts), through):
                total += counts.get(month, 0)
                yield procedure, district, measure, month, bin_, total

    async def _copy_rows(self) -> None:
        await self._copy("stats.cases", self._case_columns, self._cases)
        await self._copy("stats.folded_events", ["event_id", "stream_seq"], self._folded)
        self._cases, self._folded = [], []

    async def _copy(self, table: str, columns: list[str], records: list[tuple[Any, ...]]) -> None:
        if records:
            schema, name = table.split(".")
            await self._conn.copy_records_to_table(name, schema_name=schema, columns=columns, records=records)


def _value(token: str, args: tuple[Any, ...]) -> Any:
    """A VALUES item of the handler's INSERT: `$n` (its n-th argument) or a quoted literal."""
    if token.startswith("$"):
        return args[int(token[1:]) - 1]
    if len(token) > 1 and token[0] == token[-1] == "'":
        return token[1:-1]
    raise UnknownStatement(token)


async def fold_in_bulk(conn: asyncpg.Connection, events: Iterable[Event]) -> int:
    """Fold `events` into an empty read model on `conn`, in one transaction."""
    async with conn.transaction():
        bulk = BulkFold(conn)
        count = await bulk.fold(events)
        await bulk.finish()
    return count


# What a fold leaves that can be compared (the bookkeeping's timestamps are when it ran, not what).
COMPARED = {
    **dict.fromkeys(TABLES, "t.*"),
    "folded_events": "event_id, stream_seq",
    "consumer_positions": "consumer, stream_seq",
}


async def differences(one: asyncpg.Connection, other: asyncpg.Connection) -> list[str]:
    """The tables whose rows differ between two stats read models, each with one row that differs."""
    found = []
    for table, columns in COMPARED.items():
        query = f"SELECT ROW({columns})::text AS r FROM {SCHEMA}.{table} AS t ORDER BY r"
        rows = [[r["r"] for r in await conn.fetch(query)] for conn in (one, other)]
        if rows[0] != rows[1]:
            apart = sorted(set(rows[0]) ^ set(rows[1]))
            found.append(f"{table}: {len(rows[0])} rows against {len(rows[1])}, e.g. {apart[:1]}")
    return found


# --- 2c. the measured databases -----------------------------------------------------------------------


@dataclass
class Built:
    """One measured read model: what history it folds, how, and what a query reads from it."""

    label: str
    events: int  # CaseImported events, one per past case
    timeline_entries: int
    seconds: float  # to generate, turn into events and fold in bulk
    reads: dict[str, int] = field(default_factory=dict)  # rows the JSON series reads, per table
    each_events_per_s: float | None = None  # the reference fold, one event per transaction (if checked)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _label(events: int) -> str:
    return f"{events / 1e6:g}M" if events >= 1_000_000 else f"{events / 1e3:g}k"


class _Counted:
    """Passes events on, counting them and their timeline entries."""

    def __init__(self, events: Iterable[Folded]) -> None:
        self.events, self.count, self.entries = events, 0, 0

    def __iter__(self) -> Iterator[Folded]:
        for folded in self.events:
            self.count += 1
            self.entries += len(folded[1].timeline)
            yield folded


@contextlib.asynccontextmanager
async def new_read_model(server_url: str, name: str) -> AsyncIterator[asyncpg.Connection]:
    """A new database on the bench's server with stats' schema, as stats migrates it."""
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = url_of(server_url, name)
    pool = await create_pool(url, max_size=1)
    try:
        await migrate(pool, schema=SCHEMA, directory=MIGRATIONS, shared=("projection",))
    finally:
        await pool.close()
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


def url_of(server_url: str, name: str) -> str:
    return f"{server_url.rsplit('/', 1)[0]}/{name}"


async def _reads(conn: asyncpg.Connection, months: list[date]) -> dict[str, int]:
    """The rows `queries.aggregates` reads for the JSON series (every district together)."""
    reads = {}
    for table in ("counts", "bins", "sums"):
        reads[table] = await conn.fetchval(
            f"SELECT count(*) FROM {SCHEMA}.{table} WHERE procedure = $1 AND district = '' "
            "AND month BETWEEN $2 AND $3",
            SERIES_PROCEDURE,
            months[0],
            months[-1],
        )
    reads["open cases"] = await conn.fetchval(
        f"SELECT count(*) FROM {SCHEMA}.cases WHERE procedure = $1 AND decided_at IS NULL", SERIES_PROCEDURE
    )
    return reads


async def _vacuumed(conn: asyncpg.Connection) -> None:
    for table in (*TABLES, "folded_events"):
        await conn.execute(f"VACUUM ANALYZE {SCHEMA}.{table}")


async def build(
    server_url: str, catalogue: Catalogue, *, events: int, now: datetime, months: list[date], check: bool
) -> Built:
    """A read model folding a history of about `events` events in bulk; with `check`, the same history
    folded one event per transaction too, and the two compared."""
    label = _label(events)
    name = database_of(label)
    started = time.perf_counter()
    async with new_read_model(server_url, name) as conn:
        folded: Iterable[Folded] = history(catalogue, scale=_scale_for(catalogue, events, now=now), now=now)
        if check:
            folded = list(folded)  # folded twice
        counted = _Counted(folded)
        await fold_in_bulk(conn, counted)
        built = Built(label, counted.count, counted.entries, round(time.perf_counter() - started, 1))
        if check:
            built.each_events_per_s = await _check(server_url, f"{name}_each", conn, folded)
        await _vacuumed(conn)
        built.reads = await _reads(conn, months)
        return built


async def _check(server_url: str, name: str, bulk: asyncpg.Connection, events: Iterable[Event]) -> float:
    """Fold `events` one per transaction into a new read model and compare it with `bulk`'s; returns the
    events per second of that fold."""
    async with new_read_model(server_url, name) as each:
        pool = await create_pool(url_of(server_url, name), max_size=1)
        try:
            started = time.perf_counter()
            count = await fold_each(pool, events)
            seconds = time.perf_counter() - started
        finally:
            await pool.close()
        if found := await differences(each, bulk):
            raise RuntimeError(f"the bulk fold differs from the per-event fold: {'; '.join(found)}")
    return round(count / seconds, 1)


def database_of(label: str) -> str:
    return f"stats_{label.lower()}"


# --- 2d. the queries, timed ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p90_ms: float

    @classmethod
    def of(cls, timings: list[float]) -> Latency:
        return cls(round(statistics.median(timings), 2), round(statistics.quantiles(timings, n=10)[8], 2))


@dataclass(frozen=True)
class QueryTiming:
    query: str
    path: str
    small: Latency
    large: Latency

    @property
    def ratio(self) -> float:
        return self.large.p50_ms / self.small.p50_ms if self.small.p50_ms else 0.0

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": round(self.ratio, 3)}


@dataclass
class QueryResult:
    small: Built
    large: Built
    checked: str  # what the bulk fold was compared with, and on what
    client: str
    timings: list[QueryTiming]
    seconds: float = 0.0  # the whole of this part

    def as_json(self) -> dict[str, Any]:
        return {
            "small": self.small.as_json(),
            "large": self.large.as_json(),
            "checked": self.checked,
            "client": self.client,
            "ratio_target": RATIO_TARGET,
            "queries": [t.as_json() for t in self.timings],
            "seconds": round(self.seconds, 1),
        }


def timed_paths(months: list[date], catalogue: Catalogue) -> list[tuple[str, str]]:
    span = f"from={months[0]:%Y-%m}&to={months[-1]:%Y-%m}"
    series = f"/v1/stats/procedures/{SERIES_PROCEDURE}?{span}"
    return [
        ("floor: GET /healthz", "/healthz"),
        (f"JSON series, {len(months)} months", series),
        ("JSON series, by quarter", f"{series}&period=quarter"),
        ("procedures list", "/v1/stats/procedures"),
        (f"dashboard ({catalogue.codes()[0]}, the first procedure, 12 months)", "/statistiques"),
    ]


def time_queries(small_url: str, large_url: str, paths: list[tuple[str, str]]) -> list[QueryTiming]:
    """Each path sent REPETITIONS times to each server, one request at a time, alternating servers (and
    which goes first) so that whatever else the machine does weighs on both alike."""
    timings = []
    with httpx.Client(timeout=60) as client:
        for name, path in paths:
            measured: dict[str, list[float]] = {small_url: [], large_url: []}
            for base in (small_url, large_url):
                for _ in range(WARM_UP):
                    client.get(base + path).raise_for_status()
            for n in range(REPETITIONS):
                for base in (small_url, large_url) if n % 2 else (large_url, small_url):
                    started = time.perf_counter()
                    client.get(base + path).raise_for_status()
                    measured[base].append((time.perf_counter() - started) * 1000)
            timings.append(
                QueryTiming(name, path, Latency.of(measured[small_url]), Latency.of(measured[large_url]))
            )
    return timings


def measure_queries(
    stack: contextlib.ExitStack,
    *,
    env: dict[str, str],
    logs: Path,
    workdir: Path,
    options: tuple[str, ...],
    small_events: int,
    large_events: int,
) -> QueryResult:
    """Build the two read models, serve each by its own stats process, and time the same queries on both."""
    started = time.perf_counter()
    catalogue = load_catalogue(DEFAULT_PROCEDURES_DIR)
    now = datetime.now(UTC)
    months = domain.months_between(_months_back(now, MONTHS - 1), domain.month_of(now))
    server = env["DATABASE_URL"]
    print(
        f"  folding {_label(small_events)} events one per transaction and in bulk, and comparing ...",
        flush=True,
    )
    small = asyncio.run(build(server, catalogue, events=small_events, now=now, months=months, check=True))
    print(f"  folding {_label(large_events)} events in bulk ...", flush=True)
    large = asyncio.run(build(server, catalogue, events=large_events, now=now, months=months, check=False))
    bus = NatsServer(store=workdir / "nats-stats-queries")
    stack.callback(bus.stop)
    bus.start()
    urls = []
    for built in (small, large):
        name = database_of(built.label)
        stats = UvicornProcess(
            "services.stats.app",
            env={
                **env,
                "DATABASE_URL": url_of(server, name),
                "NATS_URL": bus.url,
                "STATS_FORECAST_SECONDS": "3600",  # published once at start-up, not while timing
            },
            log=logs / f"{name}.log",
            options=options,
        )
        stack.callback(stats.stop)
        urls.append(stats.start().url)
    print(f"  timing {REPETITIONS} requests per query on each ...", flush=True)
    timings = time_queries(urls[0], urls[1], timed_paths(months, catalogue))
    return QueryResult(
        small=small,
        large=large,
        checked=(
            f"the bulk fold of the {small.label} history gave the same rows as folding it one event per "
            f"transaction through shared.projection.fold ({', '.join(COMPARED)})"
        ),
        client=(
            "one httpx client, keep-alive over loopback, to a uvicorn process per database "
            f"({' '.join(options)})"
        ),
        timings=timings,
        seconds=time.perf_counter() - started,
    )


def _months_back(now: datetime, back: int) -> date:
    month = domain.month_of(now)
    index = month.year * 12 + month.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)


def sizes_from_env() -> tuple[int, int]:
    """BENCH_STATS_SMALL_EVENTS and BENCH_STATS_LARGE_EVENTS (defaults 10,000 and 1,000,000)."""
    return (
        int(os.environ.get("BENCH_STATS_SMALL_EVENTS", "10000")),
        int(os.environ.get("BENCH_STATS_LARGE_EVENTS", "1000000")),
    )
