"""`event store append + projection` in `make bench`: Suivi's event store and fold beside the
`eventsourcing` library (9.x, its PostgreSQL recorder on psycopg 3 binary) doing the same work on the same
PostgreSQL database, in the same run.

The work, identical on both sides: `cases` cases of `events_per_case` events (a CaseSubmitted, then
StepChanged events: envelopes of ~0.8 kB of JSON built by `make_envelope`, made before the clock starts).
They are written in rounds (version 1 of every case, then version 2, ...), one event per action, as
workflow records an agent's action: the case's version read, then the event appended at version + 1,
where a unique (case, version) key refuses a stale writer (optimistic concurrency). Then
every event is folded in the order written: its tracking record and an upsert of the case's row in a
small read model (`case_summaries`: version, last type, number of events).

- Suivi: `SELECT max(version)` then `shared.eventstore.append` (events row, outbox row, pg_notify) in
  one statement, as workflow writes an action; then `shared.projection.fold` (folded_events row, the upsert as `change`,
  consumer_positions upsert). Tables from `shared/sql/` (eventstore, projection) by `shared.db.migrate`,
  the read model as a migration of the bench's schema.
- eventsourcing: the recorder an `Application` saves through, `PostgresApplicationRecorder`, made by
  `PostgresFactory` from its environment settings. An action is `select_events(case, desc=True,
  limit=1)` for the version, then `insert_events([StoredEvent(case, version + 1, type, envelope JSON)])`:
  what `Application.save` sends for one aggregate with one new event, without replaying the aggregate
  through its mapper first (that would only cost it more). The fold is its documented materialised view:
  a `PostgresTrackingRecorder` subclass whose method writes the tracking record (`_insert_tracking`) and
  the same read-model upsert in one `datastore.transaction(commit=True)`, called with
  `Tracking(application, notification id)` as `Projection.process_event` is.
  Two configurations are measured and the baseline is the better (`CONFIGURATIONS`): its defaults (pool
  of 5 + 10, single-row tracking: one row per application, moved on; the insert pipelined as LOCK TABLE,
  NOTIFY, INSERT in one transaction), and `POSTGRES_ENABLE_DB_FUNCTIONS=y`, which its own speed runs
  set (the insert is one call of a plpgsql function, without the table lock).

How events reach the reader is left out on both sides (JetStream for Suivi, the notification log's
subscription for eventsourcing): both fold the same in-memory events, Suivi at stream positions 1..N,
eventsourcing at the notification ids its recorder returned. What still differs is each design's own:
Suivi also writes an outbox row and a folded_events row per event (its redelivery check) besides the
position, and stores jsonb; eventsourcing's default path locks its events table on each append (gapless
notification order), and it stores bytea.

Each side folds as its reader does, and that is the figure: a Suivi consumer folds what it fetched,
`FOLD_BATCH` events, in one transaction (`shared.projection.fold_all`: the batch's event ids recorded as
folded in one statement, each new event's upsert in stream order, the position moved once, one commit);
eventsourcing's projection runner folds one event per transaction (its tracking record and the view's
upsert). Suivi folding one event per transaction (`shared.projection.fold`, its careful way) is in the
details (`suivi_folding_event_by_event`), beside the library on equal terms.

Sequential on both sides (one process, one connection in use at a time per side). Each round runs Suivi
then each configuration of eventsourcing, in the reverse order every other round, in fresh schemas; the
best round of each is the figure. After each round both sides' tables are counted and their read models
compared; a difference stops the bench.

`python -m devtools.bench_eventsourcing` runs it on a PostgreSQL of its own.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import asyncpg
import psycopg
from eventsourcing.persistence import ApplicationRecorder, StoredEvent, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresFactory, PostgresTrackingRecorder
from eventsourcing.utils import Environment, strtobool
from nats.aio.msg import Msg
from psycopg.sql import SQL, Identifier

from devtools.bench_report import Figure, markdown
from shared.bus import Delivery
from shared.db import create_pool, migrate
from shared.events import Envelope, EventData, make_envelope, subject_for
from shared.events.workflow import StepChanged
from shared.eventstore import NewEvent, append
from shared.projection import FOLD_BATCH, Change, fold, fold_all
from tests.builders import case_submitted

PATH = "event store append + projection"
TARGET_RATIO = 2.0
PROCEDURE = "permis-construire"
CONSUMER = "bench-case-summaries"  # Suivi's consumer, in consumer_positions
CONSUMER_BATCH = FOLD_BATCH  # what a folding consumer fetches at a time, and folds in one transaction
APPLICATION = "Cases"  # eventsourcing's application name, in its tracking records
READ_MODEL = "case_summaries"
READ_MODEL_COLUMNS = (
    "case_id uuid PRIMARY KEY, version integer NOT NULL, last_type text NOT NULL, events integer NOT NULL"
)
# eventsourcing's settings, each measured; the baseline is the best. Its defaults; and what its own speed
# runs set: events inserted by a plpgsql function in one round trip, without the default path's table lock.
ConfigurationsType = Mapping[str, Mapping[str, str]]
CONFIGURATIONS: ConfigurationsType = {
    "defaults": {},
    "db_functions": {"POSTGRES_ENABLE_DB_FUNCTIONS": "y"},
}
UPSERT = (
    "INSERT INTO {table}(case_id, version, last_type, events) VALUES ({values}, 1) ON CONFLICT (case_id) "
    "DO UPDATE SET version = EXCLUDED.version, last_type = EXCLUDED.last_type, events = {table}.events + 1"
)


# --- the workload ------------------------------------------------------------------------------------


def _data(case_id: uuid.UUID, version: int, *, now: datetime) -> EventData:
    if version == 1:
        return case_submitted(
            case_id,
            at=now,
            facts={"district": "quartier-7", "category": "maison-individuelle", "floor_area_m2": 140},
            procedure=PROCEDURE,
        )
    return StepChanged(
        case_id=case_id,
        version=version,
        action="advance",
        from_step=f"step-{version - 1}",
        to_step=f"step-{version}",
        actor="agent",
        by="agent-urbanisme-7f3a",
        at=now,
        clock_paused=False,
        legal_deadline=now.date() + timedelta(days=60),
    )


def workload(*, cases: int, events_per_case: int) -> list[NewEvent]:
    """Every case's version 1, then every case's version 2, ...: the order both sides append and fold."""
    now, case_ids = datetime.now(UTC), [uuid.uuid4() for _ in range(cases)]
    events = []
    for case_version in range(1, events_per_case + 1):
        for case_id in case_ids:
            data = _data(case_id, case_version, now=now)
            traceparent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
            envelope = make_envelope(data, case_id=case_id, procedure=PROCEDURE, traceparent=traceparent)
            subject = subject_for(procedure=PROCEDURE, case_id=case_id, event=data)
            events.append(NewEvent(envelope=envelope, subject=subject, version=case_version))
    return events


def _check_version(current: int, event: NewEvent) -> None:
    if current + 1 != event.version:
        raise RuntimeError(f"case {event.envelope.subject} is at version {current}, not {event.version - 1}")


@dataclass
class Round:
    """One side's round: wall-clock and CPU seconds (this process's) of each phase."""

    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    _since: tuple[float, float] = (0.0, 0.0)

    def start(self) -> None:
        self._since = (time.perf_counter(), time.process_time())

    def lap(self, phase: str) -> None:
        now = (time.perf_counter(), time.process_time())
        self.seconds[phase], self.cpu_seconds[phase] = now[0] - self._since[0], now[1] - self._since[1]
        self._since = now

    def rate(self, events: int, *phases: str) -> float:
        return round(events / sum(self.seconds[p] for p in phases), 1)

    def summary(self, events: int) -> dict[str, Any]:
        found: dict[str, Any] = {"events_per_s": self.rate(events, "append", "fold")}
        found |= {f"{phase}_events_per_s": self.rate(events, phase) for phase in self.seconds}
        found["client_cpu_share"] = {p: round(self.cpu_seconds[p] / self.seconds[p], 2) for p in self.seconds}
        return found


# --- Suivi -------------------------------------------------------------------------------------------


async def _act(pool: asyncpg.Pool, *, schema: str, event: NewEvent) -> None:
    """One agent's action as workflow records it (`services.workflow.service`, an action without a key):
    the case's version read, then the event appended after it in one statement, atomic on its own, where
    the (case, version) key refuses a writer that read a version since gone (`VersionConflict`)."""
    async with pool.acquire() as conn:
        current = await conn.fetchval(
            f"SELECT coalesce(max(version), 0) FROM {schema}.events WHERE case_id = $1",
            event.envelope.case_id,
        )
        _check_version(current, event)
        await append(conn, schema=schema, events=[event])


async def _fold(pool: asyncpg.Pool, *, schema: str, stream_seq: int, event: NewEvent) -> None:
    upsert, envelope = UPSERT.format(table=f"{schema}.{READ_MODEL}", values="$1, $2, $3"), event.envelope

    async def change(conn: asyncpg.Connection) -> None:
        await conn.execute(upsert, envelope.case_id, event.version, envelope.type)

    if not await fold(
        pool, schema=schema, consumer=CONSUMER, event_id=envelope.id, stream_seq=stream_seq, change=change
    ):
        raise RuntimeError(f"event {envelope.id} was folded twice")


async def _fold_in_batches(pool: asyncpg.Pool, *, schema: str, events: Sequence[NewEvent]) -> None:
    """As a Suivi consumer folds what it fetched (`shared.projection.fold_all`, its fast way): each batch
    in one transaction, the event ids recorded in one statement, each new event's change in order, the
    position moved once."""
    upsert = UPSERT.format(table=f"{schema}.{READ_MODEL}", values="$1, $2, $3")
    no_message = cast(Msg, SimpleNamespace(headers=None))  # the events come from memory, not from NATS

    versions = {e.envelope.id: e.version for e in events}

    def change_of(delivery: Delivery) -> Change:
        envelope, version = delivery.envelope, versions[delivery.envelope.id]

        async def change(conn: asyncpg.Connection) -> None:
            await conn.execute(upsert, envelope.case_id, version, envelope.type)

        return change

    for start in range(0, len(events), CONSUMER_BATCH):
        chunk = events[start : start + CONSUMER_BATCH]
        deliveries = [
            Delivery(no_message, e.envelope, None, seq, traced=False)
            for seq, e in enumerate(chunk, start=start + 1)
        ]
        folded = await fold_all(
            pool, schema=schema, consumer=CONSUMER, deliveries=list(deliveries), change_of=change_of
        )
        if folded != len(chunk):
            raise RuntimeError(f"{len(chunk) - folded} events of a batch were folded before")


async def _suivi_schema(pool: asyncpg.Pool, *, schema: str, shared: tuple[str, ...]) -> None:
    with tempfile.TemporaryDirectory() as migrations:
        sql_text = f"CREATE TABLE {{schema}}.{READ_MODEL} ({READ_MODEL_COLUMNS});\n"
        (Path(migrations) / f"001_{READ_MODEL}.sql").write_text(sql_text, encoding="utf-8")
        await migrate(pool, schema=schema, directory=Path(migrations), shared=shared)


async def _suivi_round(database_url: str, *, schema: str, events: Sequence[NewEvent]) -> Round:
    writer = await create_pool(database_url, max_size=1)
    reader = await create_pool(database_url, max_size=1)
    try:
        await _suivi_schema(writer, schema=schema, shared=("eventstore", "projection"))
        await _suivi_schema(writer, schema=f"{schema}_batched", shared=("projection",))
        measured = Round()
        measured.start()
        for event in events:
            await _act(writer, schema=schema, event=event)
        measured.lap("append")
        for seq, event in enumerate(events, start=1):
            await _fold(reader, schema=schema, stream_seq=seq, event=event)
        measured.lap("fold")
        await _fold_in_batches(reader, schema=f"{schema}_batched", events=events)
        measured.lap("batched_fold")
    finally:
        await reader.close()
        await writer.close()
    return measured


# --- eventsourcing -----------------------------------------------------------------------------------


class CaseSummaries(PostgresTrackingRecorder):
    """eventsourcing's materialised view of the cases: its tracking record and the read-model upsert in
    one transaction, as the library's own views (its event counters) do."""

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        schema, table = Identifier(self.datastore.schema), Identifier(READ_MODEL)
        self.sql_create_statements.append(
            SQL("CREATE TABLE IF NOT EXISTS {0}.{1} (" + READ_MODEL_COLUMNS + ")").format(schema, table)
        )
        qualified = SQL("{0}.{1}").format(schema, table).as_string()
        self.upsert_statement = SQL(UPSERT.format(table=qualified, values="%s, %s, %s"))

    def fold(self, tracking: Tracking, *, envelope: Envelope, case_version: int) -> None:
        with self.datastore.transaction(commit=True) as curs:
            self._insert_tracking(curs, tracking)
            curs.execute(self.upsert_statement, (envelope.case_id, case_version, envelope.type), prepare=True)


def _settings(database_url: str, *, schema: str, extra: Mapping[str, str]) -> dict[str, str]:
    url = urlsplit(database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": url.path.lstrip("/"),
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        "POSTGRES_SCHEMA": schema,
        **extra,
    }


def _es_act(recorder: ApplicationRecorder, event: NewEvent) -> int:
    """One action through eventsourcing's recorder; returns the event's notification id."""
    case_id = event.envelope.case_id
    last = recorder.select_events(case_id, desc=True, limit=1)
    current = last[0].originator_version if last else 0
    _check_version(current, event)
    stored = StoredEvent(
        originator_id=case_id,
        originator_version=current + 1,
        topic=event.envelope.type,
        state=event.envelope.model_dump_json().encode(),
    )
    ids = recorder.insert_events([stored])
    assert ids, "an application recorder returns the notification ids"
    return ids[0]


def _eventsourcing_round(
    database_url: str, *, schema: str, events: Sequence[NewEvent], extra: Mapping[str, str]
) -> Round:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(SQL("CREATE SCHEMA {0}").format(Identifier(schema)))
    settings = _settings(database_url, schema=schema, extra=extra)
    app_factory = PostgresFactory(Environment(APPLICATION, settings))
    view_factory = PostgresFactory(Environment(READ_MODEL, settings))
    try:
        recorder = app_factory.application_recorder()
        view = view_factory.tracking_recorder(CaseSummaries)
        for factory in (app_factory, view_factory):
            factory.datastore.pool.wait()  # its pool filled before the clock starts, not during
        measured = Round()
        measured.start()
        positions = [_es_act(recorder, event) for event in events]
        measured.lap("append")
        for position, event in zip(positions, events, strict=True):
            view.fold(Tracking(APPLICATION, position), envelope=event.envelope, case_version=event.version)
        measured.lap("fold")
    finally:
        view_factory.close()
        app_factory.close()
    return measured


# --- what both wrote ---------------------------------------------------------------------------------


def _one(conn: psycopg.Connection[Any], query: str, *names: str, params: tuple[str, ...] = ()) -> Any:
    row = conn.execute(SQL(query).format(*map(Identifier, names)), params).fetchone()
    return row[0] if row else None


def suivi_written(conn: psycopg.Connection[Any], schema: str) -> dict[str, Any]:
    """Suivi's rows in `schema`: events, outbox, folded events and position; folded events of the batched
    fold; read-model rows."""
    count = "SELECT count(*) FROM {0}.{1}"
    return {
        "events": _one(conn, count, schema, "events"),
        "outbox": _one(conn, count, schema, "outbox"),
        "folded_events": _one(conn, count, schema, "folded_events"),
        "position": _one(
            conn,
            "SELECT stream_seq FROM {0}.consumer_positions WHERE consumer = %s",
            schema,
            params=(CONSUMER,),
        ),
        "batched_folded_events": _one(conn, count, f"{schema}_batched", "folded_events"),
        "read_model_rows": _one(conn, count, schema, READ_MODEL),
    }


def eventsourcing_written(conn: psycopg.Connection[Any], schema: str) -> dict[str, Any]:
    """eventsourcing's rows in `schema`: stored events, the view's tracking records and their position."""
    events, tracking, app = f"{APPLICATION.lower()}_events", f"{READ_MODEL}_tracking", (APPLICATION,)
    return {
        "events": _one(conn, "SELECT count(*) FROM {0}.{1}", schema, events),
        "tracking_records": _one(
            conn, "SELECT count(*) FROM {0}.{1} WHERE application_name = %s", schema, tracking, params=app
        ),
        "position": _one(
            conn,
            "SELECT max(notification_id) FROM {0}.{1} WHERE application_name = %s",
            schema,
            tracking,
            params=app,
        ),
    }


def read_model_differences(conn: psycopg.Connection[Any], a: str, b: str) -> Any:
    """How many rows the read models in schemas `a` and `b` differ by."""
    return _one(
        conn,
        "SELECT count(*) FROM ((SELECT * FROM {0}.{2} EXCEPT SELECT * FROM {1}.{2}) "
        "UNION ALL (SELECT * FROM {1}.{2} EXCEPT SELECT * FROM {0}.{2})) AS d",
        a,
        b,
        READ_MODEL,
    )


def _written(database_url: str, *, suivi: str, eventsourcing: Mapping[str, str]) -> dict[str, Any]:
    with psycopg.connect(database_url) as conn:
        return {
            "schemas": {"suivi": suivi, **eventsourcing},
            "suivi": suivi_written(conn, suivi),
            "eventsourcing": {name: eventsourcing_written(conn, es) for name, es in eventsourcing.items()},
            "read_model_differences": {
                "suivi_batched": read_model_differences(conn, suivi, f"{suivi}_batched"),
                **{name: read_model_differences(conn, suivi, es) for name, es in eventsourcing.items()},
            },
        }


def _single_row_tracking(settings: Mapping[str, str]) -> bool:
    # eventsourcing's default keeps one tracking row per application, moved on; "no", a row per event.
    key = PostgresFactory.POSTGRES_SINGLE_ROW_TRACKING
    return strtobool(Environment(READ_MODEL, settings).get(key, "t"))


def _check(found: Mapping[str, Any], *, events: int, cases: int, configurations: ConfigurationsType) -> None:
    """Stop the bench unless both sides recorded every event, tracked every fold, and ended with the same
    read model."""
    expected: dict[str, Any] = {
        "suivi": dict.fromkeys(
            ("events", "outbox", "folded_events", "position", "batched_folded_events"), events
        )
        | {"read_model_rows": cases},
        "eventsourcing": {
            name: {"events": events, "position": events, "tracking_records": events}
            | ({"tracking_records": 1} if _single_row_tracking(settings) else {})
            for name, settings in configurations.items()
        },
        "read_model_differences": dict.fromkeys(found["read_model_differences"], 0),
    }
    expected["schemas"] = found["schemas"]
    if found != expected:
        raise RuntimeError(f"the two sides did not record the same work: found {found}, expected {expected}")


# --- the figure --------------------------------------------------------------------------------------


def _drop(database_url: str, schemas: Sequence[str]) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(SQL("DROP SCHEMA IF EXISTS {0} CASCADE").format(Identifier(schema)))


def _context(database_url: str) -> dict[str, Any]:
    with psycopg.connect(database_url) as conn:
        postgres = {
            name: _one(conn, "SHOW {0}", name) for name in ("server_version", "fsync", "synchronous_commit")
        }
    packages = ("eventsourcing", "psycopg", "psycopg-binary", "psycopg-pool", "asyncpg")
    versions = {name: metadata.version(name) for name in packages}
    return {"postgres": postgres, "versions": versions | {"psycopg_impl": psycopg.pq.__impl__}}


@dataclass
class Comparison:
    """Both sides' rounds on the same events (eventsourcing's per configuration), and what each round left
    in the tables."""

    events: list[NewEvent]
    suivi: list[Round] = field(default_factory=list)
    eventsourcing: dict[str, list[Round]] = field(default_factory=dict)
    written: list[dict[str, Any]] = field(default_factory=list)

    def best(self, rounds: Sequence[Round], *phases: str) -> float:
        return max(r.rate(len(self.events), *phases) for r in rounds)


def _compare(
    database_url: str, *, cases: int, events_per_case: int, rounds: int, configurations: ConfigurationsType
) -> Comparison:
    found = Comparison(workload(cases=cases, events_per_case=events_per_case))
    found.eventsourcing = {name: [] for name in configurations}
    for n in range(1, rounds + 1):
        suivi, es = f"bench_suivi_{n}", {name: f"bench_eventsourcing_{n}_{name}" for name in configurations}
        _drop(database_url, [suivi, f"{suivi}_batched", *es.values()])
        sides = ["suivi", *configurations]
        # A B, then B A, ...: no side always runs first, on a server the other has just warmed up.
        for side in sides if n % 2 else reversed(sides):
            if side == "suivi":
                found.suivi.append(asyncio.run(_suivi_round(database_url, schema=suivi, events=found.events)))
            else:
                extra = configurations[side]
                es_round = _eventsourcing_round(
                    database_url, schema=es[side], events=found.events, extra=extra
                )
                found.eventsourcing[side].append(es_round)
        found.written.append(_written(database_url, suivi=suivi, eventsourcing=es))
        _check(found.written[-1], events=len(found.events), cases=cases, configurations=configurations)
    return found


def measure_eventsourcing(
    *,
    database_url: str,
    cases: int = 200,
    events_per_case: int = 5,
    rounds: int = 4,
    eventsourcing_configurations: ConfigurationsType = CONFIGURATIONS,
) -> Figure:
    """Events/s of Suivi's appends + folds beside eventsourcing's doing the same (the best round of its
    best configuration), best rounds, alternated."""
    found = _compare(
        database_url,
        cases=cases,
        events_per_case=events_per_case,
        rounds=rounds,
        configurations=eventsourcing_configurations,
    )
    events = len(found.events)
    value = found.best(found.suivi, "append", "batched_fold")
    by_configuration = {name: found.best(r, "append", "fold") for name, r in found.eventsourcing.items()}
    baseline = max(by_configuration.values())
    event_by_event = found.best(found.suivi, "append", "fold")
    return Figure(
        path=PATH,
        measured_as="events/s vs the eventsourcing library 9.x (PostgreSQL recorder, psycopg binary), "
        "same appends and tracking records, each folding as its reader does",
        unit="events/s",
        value=value,
        baseline=baseline,
        target=f"≥ {TARGET_RATIO:g}×",
        passed=value / baseline >= TARGET_RATIO,
        details={
            "cases": cases,
            "events_per_case": events_per_case,
            "events": events,
            "payload_bytes": round(sum(len(e.envelope.model_dump_json()) for e in found.events) / events),
            "concurrency": "sequential: one process, one connection in use at a time per side",
            "order": "Suivi then each eventsourcing configuration, reversed every other round; fresh schemas",
            "eventsourcing_configurations": {
                name: {"settings": dict(settings), "events_per_s": by_configuration[name]}
                for name, settings in eventsourcing_configurations.items()
            },
            "suivi_folding_event_by_event": {
                "events_per_s": event_by_event,
                "ratio": round(event_by_event / baseline, 3),
            },
            "consumer_batch": CONSUMER_BATCH,
            "rounds": {
                "suivi": [r.summary(events) for r in found.suivi],
                **{name: [r.summary(events) for r in rs] for name, rs in found.eventsourcing.items()},
            },
            "written": found.written,
            **_context(database_url),
        },
    )


def main() -> None:
    from devtools.servers import PostgresServer

    with tempfile.TemporaryDirectory(prefix="bench-eventsourcing-") as tmp:
        pg = PostgresServer(data=Path(tmp) / "pg")
        try:
            pg.start()
            figure = measure_eventsourcing(database_url=pg.create_database("bench"))
        finally:
            pg.stop()
    print(markdown([figure]))
    print(json.dumps(asdict(figure)["details"], indent=2))


if __name__ == "__main__":
    main()
