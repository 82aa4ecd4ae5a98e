"""The outbox relay in `make bench`: how fast `OutboxRelay` empties an outbox into JetStream, beside raw
nats-py publishing the same payloads.

1. A fresh schema (`bench_relay`) gets the writers' event store (`shared/sql/eventstore.sql`), and
   `events` CaseSubmitted-like events, one per case, are appended through `shared.eventstore.append` in
   transactions of `APPEND_CHUNK` (not timed).
2. `OutboxRelay.relay_once` is looped until the outbox is empty, on the `CASES` stream: events/s from the
   first batch to the last.
3. The baseline: raw `js.publish_async` of the same payload bytes, with the same headers (a fresh
   `Nats-Msg-Id` each run, or JetStream would drop them as duplicates), all acks awaited. It runs before
   and after the relay and the better of the two counts, so neither side gets the warmer server alone.

Telemetry is set up as in a service (`shared.telemetry.setup_telemetry`): without an OTLP endpoint no span
is recorded, and the relay passes the request's traceparent on; `details.spans_recorded` says which.

Everything is published under `case.bench-relay.>` and purged before and after, so the stream's other
content is left alone; but a service consuming `CASES` on the same NATS would see these events, so give
it a NATS of its own (`python -m devtools.bench_relay` starts its own PostgreSQL and NATS).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import nats
from nats.js import JetStreamContext

from devtools.bench_report import Figure, markdown
from shared import bus
from shared.db import create_pool, migrate
from shared.events import STREAM, Envelope, make_envelope, subject_for
from shared.eventstore import BATCH, NewEvent, OutboxRelay, append
from shared.telemetry import setup_telemetry, tracing
from tests.builders import case_submitted

SCHEMA = "bench_relay"
PROCEDURE = "bench-relay"  # a procedure code of its own: its subjects can be purged alone
SUBJECTS = f"case.{PROCEDURE}.>"
APPEND_CHUNK = 500
RATIO_TARGET = 0.5


def _event(number: int, *, now: datetime) -> NewEvent:
    """A submission as intake records it: public facts only, a traceparent from the HTTP request."""
    case_id = uuid.uuid4()
    data = case_submitted(
        case_id,
        at=now,
        facts={
            "district": f"quartier-{number % 12}",
            "category": "maison-individuelle",
            "floor_area_m2": 140,
        },
    )
    traceparent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
    envelope = make_envelope(data, case_id=case_id, procedure=PROCEDURE, traceparent=traceparent, at=now)
    subject = subject_for(procedure=PROCEDURE, case_id=case_id, event=data)
    return NewEvent(envelope=envelope, subject=subject, version=1)


async def _fresh_schema(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    with tempfile.TemporaryDirectory() as no_migrations:
        await migrate(pool, schema=SCHEMA, directory=Path(no_migrations), shared=("eventstore",))


async def _append_all(pool: asyncpg.Pool, events: Sequence[NewEvent]) -> None:
    async with pool.acquire() as conn:
        for start in range(0, len(events), APPEND_CHUNK):
            async with conn.transaction():
                await append(conn, schema=SCHEMA, events=events[start : start + APPEND_CHUNK])


async def _relay_seconds(pool: asyncpg.Pool, js: JetStreamContext, *, batch: int) -> tuple[float, int]:
    """Seconds `relay_once` takes, looped, to empty the outbox; and how many batches it took."""
    relay = OutboxRelay(pool=pool, js=js, schema=SCHEMA, batch=batch)
    async with pool.acquire() as conn:
        gc.collect()
        started, batches = time.perf_counter(), 0
        while await relay.relay_once(conn):
            batches += 1
        elapsed = time.perf_counter() - started
        left = await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.outbox WHERE published_at IS NULL")
    if left:
        raise RuntimeError(f"the relay left {left} events unpublished")
    return elapsed, batches


@dataclass(frozen=True)
class _Message:
    subject: str
    body: bytes
    headers: dict[str, str]


async def _messages(pool: asyncpg.Pool) -> list[_Message]:
    """What the relay publishes, in outbox order: the stored envelopes as PostgreSQL gives them back, and
    the headers `shared.bus.event_headers` gives them (a producer span's traceparent is as long)."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT e.subject, e.envelope::text FROM {SCHEMA}.outbox o JOIN {SCHEMA}.events e "
            "USING (event_id) ORDER BY o.position"
        )
    messages = []
    for subject, text in rows:
        envelope = Envelope.model_validate_json(text)
        headers = bus.event_headers(envelope, traceparent=envelope.traceparent)
        messages.append(_Message(subject, text.encode(), headers))
    return messages


async def _raw_seconds(js: JetStreamContext, messages: Sequence[_Message]) -> float:
    """Seconds raw `publish_async` takes to publish the messages and get every ack, each under a new
    message id (of the same length): JetStream would drop the relay's own as duplicates."""
    headers = [{**m.headers, "Nats-Msg-Id": str(uuid.uuid4())} for m in messages]  # nats-py adds to them
    gc.collect()
    started = time.perf_counter()
    acks = [
        await js.publish_async(m.subject, m.body, stream=STREAM, headers=h)
        for m, h in zip(messages, headers, strict=True)
    ]
    answers = await asyncio.gather(*acks)
    elapsed = time.perf_counter() - started
    if any(ack.duplicate or ack.stream != STREAM for ack in answers):
        raise RuntimeError("raw publishing was not stored as new messages of the stream")
    return elapsed


async def _measure(database_url: str, nats_url: str, *, events: int, batch: int) -> Figure:
    setup_telemetry(service="bench")  # as a service: spans recorded only where they are exported
    pool = await create_pool(database_url, max_size=2)
    relay_nc = await bus.connect(nats_url, name="bench-relay")
    raw_nc = await nats.connect(nats_url)
    try:
        js = relay_nc.jetstream()
        await bus.ensure_stream(js)
        await js.purge_stream(STREAM, subject=SUBJECTS)
        await _fresh_schema(pool)
        now = datetime.now(UTC)
        await _append_all(pool, [_event(n, now=now) for n in range(events)])
        messages = await _messages(pool)
        raw_js = raw_nc.jetstream()
        raw_before = await _raw_seconds(raw_js, messages)
        relay, batches = await _relay_seconds(pool, js, batch=batch)
        raw_after = await _raw_seconds(raw_js, messages)
        await js.purge_stream(STREAM, subject=SUBJECTS)
        async with pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
    finally:
        await raw_nc.close()
        await relay_nc.close()
        await pool.close()
    raw = min(raw_before, raw_after)
    ratio = raw / relay
    return Figure(
        path="relay, outbox to JetStream",
        measured_as="events/s vs raw nats-py publish_async of the same payloads",
        unit="events/s",
        value=round(events / relay, 1),
        baseline=round(events / raw, 1),
        target=f"≥ {RATIO_TARGET}×",
        passed=ratio >= RATIO_TARGET,
        details={
            "events": events,
            "batch": batch,
            "batches": batches,
            "relay_seconds": round(relay, 3),
            "raw_seconds": [round(raw_before, 3), round(raw_after, 3)],
            "payload_bytes": round(sum(len(m.body) for m in messages) / events),
            "spans_recorded": tracing(),
        },
        ratio=ratio,
    )


def measure_relay(*, database_url: str, nats_url: str, events: int = 20000, batch: int = BATCH) -> Figure:
    """The relay's events/s beside raw nats-py `publish_async` of the same payloads, in the same run."""
    return asyncio.run(_measure(database_url, nats_url, events=events, batch=batch))


def main() -> None:
    from devtools.servers import NatsServer, PostgresServer

    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp, contextlib.ExitStack() as stack:
        pg = PostgresServer(data=Path(tmp) / "pg").start()
        stack.callback(pg.stop)
        nats_server = NatsServer(store=Path(tmp) / "nats").start()
        stack.callback(nats_server.stop)
        figure = measure_relay(database_url=pg.create_database("bench"), nats_url=nats_server.url)
        print(markdown([figure]))
        print(json.dumps(asdict(figure)["details"]))


if __name__ == "__main__":
    main()
