"""Issue 12's projection-fold line: how fast tracking and stats rebuild their read model from the stream,
beside a raw nats-py consumer of the same events.

The stream is a city's, as a rebuild finds it: first its past, then its live cases, all written by the
services' own code and published by their own outbox relays (`shared.eventstore.OutboxRelay`):

- the past: `make demo`'s history (`devtools/history.py`) imported through intake (`import_lines`), one
  `CaseImported` per past case;
- then live cases, a few hundred at a time: each submitted through intake (`services.intake.api.submit`,
  a `CaseSubmitted`), opened by workflow's consumer handler (`CaseOpened`), taken by an agent
  (`CaseAssigned`) and moved through its procedure's steps by workflow's commands (`service.act`,
  `StepChanged`), the citizen answering through intake when asked for documents (`CitizenReplied`, then
  workflow's move on), some decided, some left open at any step. Each phase of a group is relayed before
  the next, so a case's events are on the stream in the order they happened, and the cases interleave.

By default about 30,000 events: some 6,000 past cases (one event each) and 3,700 live cases (about 6.5
events each: a quarter of the stream is history, as in a city a year or two after its go-live). Not in the
mix: ratings, deadline warnings and fix checks (a few percent of a real stream).

Then, in the same run:
1. a bare durable pull consumer (nats-py) fetches the whole stream 64 at a time and acks each message:
   the baseline, events/s;
2. tracking, then stats, each started (uvicorn, as the other services) with an empty read model, fold the
   same events; a reader's rate is the events over the time from its first fold to its last (the
   `folded_at` of its `folded_events`: when the transaction of each batch began), its start-up not counted.

It needs a database and a NATS of its own (`env`): no other service may read the stream, nor write to the
database. `python -m devtools.bench_fold` runs it alone, on a PostgreSQL and a NATS it starts
(BENCH_FOLD_EVENTS: how many events, about).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import nats
from nats.js.api import AckPolicy, ConsumerConfig

from devtools import demo
from devtools.bench_report import Figure, markdown
from devtools.history import generate
from devtools.servers import NatsServer, PostgresServer, UvicornProcess
from services.intake import api as intake_api
from services.intake import domain as intake_domain
from services.intake import queries as intake_queries
from services.intake.imports import import_lines
from services.intake.schemas import CaseCreate, ReplyCreate
from services.intake.settings import IntakeSettings
from services.workflow import consumers as workflow_consumers
from services.workflow import service as workflow_service
from services.workflow.clock import SystemClock
from services.workflow.schemas import ActionCreate
from shared import bus
from shared.auth import Agent
from shared.db import create_pool, migrate
from shared.events import ALL_CASES, STREAM, parse
from shared.events.intake import CaseSubmitted, CitizenReplied
from shared.eventstore import NewEvent, OutboxRelay
from shared.idempotency import Answer
from shared.migrate import SHARED_SQL
from shared.procedures import Catalogue, Procedure, Role, Turn, load_catalogue
from shared.settings import DEFAULT_PROCEDURES_DIR, REPO_ROOT

EVENTS = 30_000  # about: the history's share is fixed, live cases make up the rest
HISTORY_SCALE = 0.5  # of `make demo`'s 18 months: about 6,000 past cases
EVENTS_PER_LIVE_CASE = 6.5  # measured on this mix: submitted, opened, assigned, 2 to 4 moves, replies
GROUP = 250  # live cases written, then relayed, together
WRITERS = 8  # live cases written at once
RAW_BATCH = 64
TARGET = 0.5
FOLD_PATIENCE_SECONDS = 120.0
SEED = 12
READERS = (("tracking", "services.tracking.app"), ("stats", "services.stats.app"))
T = TypeVar("T")


# --- the stream: a city's past, then its live cases ----------------------------------------------------


@dataclass
class Writers:
    """What writes the city's events: intake's and workflow's own code, on one pool, and their relays."""

    pool: asyncpg.Pool
    catalogue: Catalogue
    intake: IntakeSettings
    relays: tuple[OutboxRelay, OutboxRelay]
    agent: Agent  # a supervisor of every service: takes and moves every case

    async def relay(self) -> None:
        """Publish every event intake, then workflow, has recorded and not published yet."""
        async with self.pool.acquire() as conn:
            for relay in self.relays:
                published = await relay.relay_once(conn)
                while published:  # until the outbox is empty
                    published = await relay.relay_once(conn)


async def _migrated(pool: asyncpg.Pool) -> None:
    for service in ("intake", "workflow"):
        directory = REPO_ROOT / "services" / service / "migrations"
        await migrate(pool, schema=service, directory=directory, shared=SHARED_SQL[service])


async def _import_history(writers: Writers, *, scale: float) -> int:
    lines = [json.dumps(case) for case in generate(writers.catalogue, months=18, scale=scale)]
    summary = await import_lines(writers.pool, enumerate(lines, start=1), writers.catalogue)
    return summary.imported


@dataclass
class LiveCase:
    """A live case as the agent sees it: where it is now, at which version."""

    case_id: uuid.UUID
    procedure: Procedure
    step: str
    version: int
    code: str  # its tracking code: what the citizen answers with

    @property
    def final(self) -> bool:
        return self.procedure.step(self.step).outcome is not None

    @property
    def awaits_reply(self) -> bool:
        """Whether the case waits for the citizen's answer (a payment, say, is the agent's to confirm)."""
        return self.procedure.step(self.step).turn is Turn.CITIZEN and any(
            t.from_ == self.step and Role.CITIZEN in t.roles for t in self.procedure.transitions
        )


def _submission(procedure: str, rng: random.Random) -> CaseCreate:
    body = demo.submission(procedure)
    data = dict(body["data"])
    if "district" in data:
        data["district"] = rng.choice(("centre", "nord", "sud", "est", "ouest"))
    if "location" in data:  # a street report's place, as a phone gives it (no address search)
        point = {
            "latitude": round(rng.uniform(45.755, 45.765), 5),
            "longitude": round(rng.uniform(4.825, 4.84), 5),
        }
        data["location"] = data["location"] | point
    channel = rng.choice(("web", "web", "web", "counter", "phone", "mail"))
    return CaseCreate.model_validate({**body, "data": data, "channel": channel})


async def _in_transaction(pool: asyncpg.Pool, write: Callable[[asyncpg.Connection], Awaitable[None]]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await write(conn)


async def _submit(writers: Writers, rng: random.Random) -> LiveCase:
    """A citizen submits (intake), and workflow's consumer opens the case (as it would from the stream)."""
    procedure = rng.choice(list(demo.VALID_DATA))
    submitted = await intake_api.submit(
        pool=writers.pool,
        body=_submission(procedure, rng),
        catalogue=writers.catalogue,
        settings=writers.intake,
        lang="fr",
        key=None,
    )
    case = submitted.case
    stored = await writers.pool.fetchval(
        "SELECT envelope FROM intake.events WHERE case_id = $1 AND type = $2",
        case.case_id,
        CaseSubmitted.type,
    )
    _, event = parse(json.dumps(stored))
    assert isinstance(event, CaseSubmitted)
    await _in_transaction(
        writers.pool,
        lambda conn: workflow_consumers.open_submitted_case(conn, event, writers.catalogue, SystemClock()),
    )
    definition = writers.catalogue.get(case.procedure, case.procedure_version)
    assert definition is not None
    return LiveCase(case.case_id, definition, definition.first_step.code, 1, case.tracking_code)


async def _act(writers: Writers, case: LiveCase, action: str, *, reason: str | None = None) -> None:
    answer, _ = await workflow_service.act(
        writers.pool,
        catalogue=writers.catalogue,
        clock=SystemClock(),
        case_id=case.case_id,
        agent=writers.agent,
        command=ActionCreate(action=action, expected_version=case.version, reason=reason),
        idempotency_key=None,
    )
    case.step, case.version = answer["step"], answer["version"]


async def _agent_moves(writers: Writers, case: LiveCase, rng: random.Random) -> None:
    """The agent takes the case if nobody has, then moves it on until it is final, the citizen's turn,
    or left for later (a case still open)."""
    if case.version == 1:
        await _act(writers, case, "take")
    for _ in range(4):
        if case.final or case.awaits_reply or rng.random() < 0.12:
            return
        moves = [
            t
            for t in case.procedure.transitions
            if t.from_ == case.step and Role.SUPERVISOR in t.roles and t.to != "duplicate"
        ]
        if not moves:
            return
        move = rng.choice(moves)
        rejected = case.procedure.step(move.to).outcome == "rejected"
        await _act(writers, case, move.action, reason="hors délai" if rejected else None)


async def _citizen_replies(writers: Writers, case: LiveCase) -> None:
    """The citizen answers the request for documents (intake), and workflow takes the answer (its
    consumer handler, as it would from the stream)."""
    reply = intake_domain.receive_reply(
        case_id=case.case_id,
        procedure=case.procedure.code,
        reply=ReplyCreate(tracking_code=case.code, message="Voici les pièces demandées.", documents=[]),
    )
    recorded: list[NewEvent] = []

    def events(version: int) -> list[NewEvent]:
        recorded[:] = intake_domain.reply_events(reply, version=version, traceparent=None)
        return recorded

    await intake_queries.record_reply(
        writers.pool, reply=reply, events=events, idempotent=None, answer=Answer(status=202, body={})
    )
    _, event = parse(recorded[0].envelope.model_dump_json())
    assert isinstance(event, CitizenReplied)
    await _in_transaction(
        writers.pool,
        lambda conn: workflow_consumers.take_citizen_reply(conn, event, writers.catalogue, SystemClock()),
    )
    case.version += 1
    case.step = next(
        t.to for t in case.procedure.transitions if t.from_ == case.step and Role.CITIZEN in t.roles
    )


async def _each(items: Iterable[T], work: Callable[[T], Awaitable[None]]) -> None:
    """`work` on every item, `WRITERS` at a time (like as many agents and citizens)."""
    queue = iter(items)

    async def writer() -> None:
        for item in queue:
            await work(item)

    await asyncio.gather(*(writer() for _ in range(WRITERS)))


async def _live_group(writers: Writers, count: int, rng: random.Random) -> None:
    """`count` live cases: submitted and opened, then moved on by agents and answered by citizens, each
    phase relayed before the next."""
    cases: list[LiveCase] = []

    async def submit(_: int) -> None:
        cases.append(await _submit(writers, rng))

    await _each(range(count), submit)
    await writers.relay()
    for _ in range(3):  # the agents' moves, the citizens' answers, and again
        await _each(cases, lambda case: _agent_moves(writers, case, rng))
        await writers.relay()
        waiting = [case for case in cases if case.awaits_reply and rng.random() < 0.85]
        if not waiting:
            return
        await _each(waiting, lambda case: _citizen_replies(writers, case))
        await writers.relay()


async def fill_stream(database_url: str, nats_url: str, *, events: int) -> int:
    """Write the city's stream (module docstring); returns how many events it holds."""
    pool = await create_pool(database_url, max_size=WRITERS + 2)
    nc = await bus.connect(nats_url, name="bench-fold-writers")
    try:
        js = nc.jetstream()
        await bus.ensure_stream(js)
        await _migrated(pool)
        catalogue = load_catalogue(DEFAULT_PROCEDURES_DIR)
        services = {p.service for versions in catalogue.versions.values() for p in versions.values()}
        writers = Writers(
            pool=pool,
            catalogue=catalogue,
            intake=IntakeSettings(database_url=database_url, nats_url=nats_url, environment="test"),
            relays=(
                OutboxRelay(pool=pool, js=js, schema="intake"),
                OutboxRelay(pool=pool, js=js, schema="workflow"),
            ),
            agent=Agent(id="bench-agent", role=Role.SUPERVISOR, services=frozenset(services)),
        )
        past = await _import_history(writers, scale=HISTORY_SCALE)
        await writers.relay()
        rng = random.Random(SEED)
        live = max(0, round((events - past) / EVENTS_PER_LIVE_CASE))
        for start in range(0, live, GROUP):
            await _live_group(writers, min(GROUP, live - start), rng)
        info = await js.stream_info(STREAM)
        return int(info.state.messages)
    finally:
        await nc.close()
        await pool.close()


# --- the baseline and the readers ----------------------------------------------------------------------


async def raw_consume(nats_url: str, count: int, *, batch: int = RAW_BATCH) -> float:
    """Seconds a bare durable pull consumer takes to fetch the stream's `count` events, `batch` at a time,
    and ack each one."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        durable = f"bench-raw-{batch}"
        config = ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT, filter_subject=ALL_CASES)
        sub = await js.pull_subscribe(ALL_CASES, durable=durable, stream=STREAM, config=config)
        started, seen = time.perf_counter(), 0
        while seen < count:
            for msg in await sub.fetch(batch, timeout=5):
                await msg.ack()
                seen += 1
        elapsed = time.perf_counter() - started
        await js.delete_consumer(STREAM, durable)
        return elapsed
    finally:
        await nc.close()


async def fold_seconds(database_url: str, *, schema: str, count: int, patience: float) -> float:
    """Seconds between a reader's first and last fold of the stream's `count` events."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline, folded = time.monotonic() + patience, 0
        while time.monotonic() < deadline:
            with contextlib.suppress(asyncpg.UndefinedTableError):  # its migrations may not have run yet
                folded = await conn.fetchval(f"SELECT count(*) FROM {schema}.folded_events")
            if folded >= count:
                span = await conn.fetchval(
                    f"SELECT extract(epoch FROM max(folded_at) - min(folded_at)) FROM {schema}.folded_events"
                )
                return float(span)
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{schema} folded {folded} of {count} events in {patience:.0f} s")
    finally:
        await conn.close()


def _figure(
    reader: str, *, events: int, raw_seconds: float, seconds: float, details: dict[str, Any]
) -> Figure:
    value, baseline = events / max(seconds, 1e-3), events / raw_seconds
    return Figure(
        path=f"projection fold, {reader}, rebuild from the stream",
        measured_as="events/s vs raw nats-py pull-consume-and-ack of the same events",
        unit="events/s",
        value=round(value, 1),
        baseline=round(baseline, 1),
        target=f"≥ {TARGET}×",
        passed=value / baseline >= TARGET,
        details={"events": events, "fold_seconds": round(seconds, 2), **details},
    )


def measure_folds(
    *,
    env: dict[str, str],
    logs: Path,
    options: tuple[str, ...],
    stack: contextlib.ExitStack,
    events: int = EVENTS,
) -> list[Figure]:
    """Fill a stream of about `events` (module docstring), time the raw consumer over it, then each reader's
    rebuild of it; one figure per reader. `env`'s DATABASE_URL and NATS_URL must be the bench's own,
    empty: a database, and a NATS whose stream no service reads."""
    database_url, nats_url = env["DATABASE_URL"], env["NATS_URL"]
    started = time.monotonic()
    count = asyncio.run(fill_stream(database_url, nats_url, events=events))
    filled = time.monotonic() - started
    raw_seconds = asyncio.run(raw_consume(nats_url, count))
    figures = []
    for reader, module in READERS:
        app = UvicornProcess(module, env=env, log=logs / f"fold-{reader}.log", options=options)
        stack.callback(app.stop)
        app.start()
        try:
            seconds = asyncio.run(
                fold_seconds(database_url, schema=reader, count=count, patience=FOLD_PATIENCE_SECONDS)
            )
        finally:
            app.stop()
        figures.append(
            _figure(
                reader,
                events=count,
                raw_seconds=raw_seconds,
                seconds=seconds,
                details={"raw_seconds": round(raw_seconds, 2), "stream_written_seconds": round(filled, 1)},
            )
        )
    return figures


@contextlib.contextmanager
def _servers() -> Iterator[tuple[contextlib.ExitStack, dict[str, str], Path]]:
    """PostgreSQL and NATS of their own, in a temporary directory, for `python -m devtools.bench_fold`."""
    with tempfile.TemporaryDirectory(prefix="suivi-bench-fold-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        pg = PostgresServer(data=workdir / "pg")
        stack.callback(pg.stop)
        pg.start()
        nats_server = NatsServer(store=workdir / "nats")
        stack.callback(nats_server.stop)
        nats_server.start()
        logs = workdir / "logs"
        logs.mkdir()
        env = {
            **os.environ,
            "DATABASE_URL": pg.create_database("bench_fold"),
            "NATS_URL": nats_server.url,
            "ENVIRONMENT": "test",
            "LOG_LEVEL": "WARNING",
        }
        yield stack, env, logs


def main() -> int:
    options = ("--workers", "1", "--no-access-log", "--log-level", "warning")
    events = int(os.environ.get("BENCH_FOLD_EVENTS", EVENTS))
    with _servers() as (stack, env, logs):
        figures = measure_folds(env=env, logs=logs, options=options, stack=stack, events=events)
    print(markdown(figures))
    for figure in figures:
        print(f"{figure.path}: {figure.details}")
    return 0 if all(f.passed for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
