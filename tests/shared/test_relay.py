"""The outbox relay publishes a writer's events to JetStream pipelined, yet each exactly once and in outbox
order: a batch whose acks stop coming (NATS killed mid-batch) marks only the prefix acknowledged, and once
NATS is back the stream ends with every event once, in order."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared import bus, eventstore
from shared.db import create_pool, migrate
from shared.events import STREAM, EventData, make_envelope, parse, subject_for
from shared.events.intake import CitizenReplied
from shared.eventstore import NewEvent, OutboxRelay, append
from tests.builders import case_submitted
from tests.conftest import Env
from tests.waiting import eventually, scalar

SCHEMA = "relay_probe"
PROCEDURE = "permis-construire"


def _event(case_id: uuid.UUID, version: int) -> NewEvent:
    """The case's submission (version 1), then citizens' replies."""
    now = datetime.now(UTC)
    data: EventData
    if version == 1:
        data = case_submitted(case_id, at=now, facts={"district": "centre"}, procedure=PROCEDURE)
    else:
        data = CitizenReplied(case_id=case_id, reply_id=uuid.uuid4(), documents=version, replied_at=now)
    traceparent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
    envelope = make_envelope(data, case_id=case_id, procedure=PROCEDURE, traceparent=traceparent)
    return NewEvent(
        envelope=envelope,
        subject=subject_for(procedure=PROCEDURE, case_id=case_id, event=data),
        version=version,
    )


@dataclass
class Writer:
    pool: asyncpg.Pool
    nc: NATS
    js: JetStreamContext

    async def append_interleaved(self, *, cases: int, each: int) -> list[str]:
        """`each` events of each of `cases` cases, the cases taking turns, one transaction per round;
        returns the event ids in outbox order."""
        case_ids = [uuid.uuid4() for _ in range(cases)]
        ids: list[str] = []
        async with self.pool.acquire() as conn:
            for version in range(1, each + 1):
                events = [_event(case_id, version) for case_id in case_ids]
                async with conn.transaction():
                    await append(conn, schema=SCHEMA, events=events)
                ids += [str(e.envelope.id) for e in events]
        return ids

    async def relay_once(self, relay: OutboxRelay) -> int:
        async with self.pool.acquire() as conn:
            return await relay.relay_once(conn)

    async def relay_batches(self, relay: OutboxRelay, times: int) -> list[int]:
        """`relay_once` `times` on one connection, as the relay's loop does: each full batch's successor is
        read while it is published."""
        async with self.pool.acquire() as conn:
            return [await relay.relay_once(conn) for _ in range(times)]

    async def marked(self) -> list[tuple[str, int]]:
        """The outbox rows marked published, in outbox order: (event id, stream sequence)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT event_id::text, stream_seq FROM {SCHEMA}.outbox WHERE published_at IS NOT NULL "
                "ORDER BY position"
            )
        return [(r[0], r[1]) for r in rows]


@pytest.fixture
async def writer(env: Env, tmp_path: Path) -> AsyncIterator[Writer]:
    pool = await create_pool(env.database_url, max_size=4)
    nc = await bus.connect(env.nats_url, name="relay-test")
    js = nc.jetstream()
    await bus.ensure_stream(js)
    await migrate(pool, schema=SCHEMA, directory=tmp_path / "no-migrations", shared=("eventstore",))
    try:
        yield Writer(pool=pool, nc=nc, js=js)
    finally:
        await nc.close()
        await pool.close()


async def _stream(nats_url: str) -> list[tuple[int, dict[str, str], bytes]]:
    """Every message of the stream, in order: (sequence, headers, body)."""
    nc = await bus.connect(nats_url, name="relay-test-reader")
    try:
        js = nc.jetstream()
        last = (await js.stream_info(STREAM)).state.last_seq
        messages = [await js.get_msg(STREAM, seq) for seq in range(1, last + 1)]
        return [(int(m.seq or 0), dict(m.headers or {}), m.data or b"") for m in messages]
    finally:
        await nc.close()


async def test_events_of_several_cases_reach_the_stream_once_each_in_outbox_order(
    writer: Writer, env: Env, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(eventstore, "CHUNK_EVENTS", 4)  # batches of 10 sent in pieces of 4, 4 and 2
    ids = await writer.append_interleaved(cases=5, each=5)
    relay = OutboxRelay(pool=writer.pool, js=writer.js, schema=SCHEMA, batch=10)

    assert await writer.relay_batches(relay, 4) == [10, 10, 5, 0]

    stream = await _stream(env.nats_url)
    assert [headers["Nats-Msg-Id"] for _, headers, _ in stream] == ids
    assert await writer.marked() == [(headers["Nats-Msg-Id"], seq) for seq, headers, _ in stream]
    for _, headers, body in stream:
        envelope, _ = parse(body)
        expected = bus.event_headers(envelope, traceparent=headers["traceparent"])
        assert headers == {**expected, "Nats-Expected-Stream": STREAM}
    # Each publish is a PRODUCER span, child of the request that wrote the event, whose traceparent is sent.
    publishing = {
        str((s.attributes or {}).get("event_id")): s
        for s in spans.get_finished_spans()
        if s.kind == SpanKind.PRODUCER
    }
    for _, headers, body in stream:
        envelope, _ = parse(body)
        span = publishing[headers["Nats-Msg-Id"]]
        assert span.parent is not None and span.context is not None and envelope.traceparent is not None
        assert envelope.traceparent.split("-")[1:3] == [
            f"{span.parent.trace_id:032x}",
            f"{span.parent.span_id:016x}",
        ]
        assert headers["traceparent"] == f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-01"


async def test_a_batch_cut_short_by_nats_marks_only_its_acknowledged_prefix_and_ends_complete(
    writer: Writer, env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(eventstore, "CHUNK_EVENTS", 5)
    ids = await writer.append_interleaved(cases=4, each=5)
    # NATS dies just before the 13th event of the batch is sent: its first two pieces (10 events) are
    # acknowledged, the third is sent to a server gone.
    events = 0
    publish: Callable[..., Awaitable[None]] = writer.nc.publish

    async def dying(subject: str, *args: Any, **kwargs: Any) -> None:
        nonlocal events
        events += subject.startswith("case.")
        if events == 13:
            env.nats.stop(kill=True)
        await publish(subject, *args, **kwargs)

    monkeypatch.setattr(writer.nc, "publish", dying)
    relay = OutboxRelay(pool=writer.pool, js=writer.js, schema=SCHEMA, batch=20, ack_timeout=1)

    with pytest.raises(TimeoutError):
        await writer.relay_once(relay)

    assert [event_id for event_id, _ in await writer.marked()] == ids[:10]
    assert [seq for _, seq in await writer.marked()] == list(range(1, 11))

    env.nats.start()
    running = asyncio.create_task(relay.run())  # retries, as in a service, until NATS answers again
    try:
        left = await eventually(
            lambda: scalar(
                env.database_url, f"SELECT count(*) FROM {SCHEMA}.outbox WHERE published_at IS NULL"
            ),
            until=lambda n: n == 0,
            timeout=60,
        )
        assert left == 0
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    stream = await _stream(env.nats_url)
    assert [headers["Nats-Msg-Id"] for _, headers, _ in stream] == ids
    assert await writer.marked() == [(headers["Nats-Msg-Id"], seq) for seq, headers, _ in stream]


async def test_an_event_committed_after_later_ones_still_goes_before_its_cases_next(
    writer: Writer, env: Env
) -> None:
    case_id = uuid.uuid4()
    first, second = _event(case_id, 1), _event(case_id, 2)
    late = await writer.pool.acquire()
    try:
        writing = late.transaction()
        await writing.start()
        await append(late, schema=SCHEMA, events=[first])  # takes the first outbox position, not committed
        others = await writer.append_interleaved(cases=12, each=1)
        relay = OutboxRelay(pool=writer.pool, js=writer.js, schema=SCHEMA, batch=5)
        async with writer.pool.acquire() as conn:
            assert await relay.relay_once(conn) == 5  # and the next five were read meanwhile
            await writing.commit()
            async with writer.pool.acquire() as other:
                await append(other, schema=SCHEMA, events=[second])
            left = await relay.relay_once(conn)
            while left:  # until the outbox is empty
                left = await relay.relay_once(conn)
    finally:
        await writer.pool.release(late)

    on_the_stream = [headers["Nats-Msg-Id"] for _, headers, _ in await _stream(env.nats_url)]
    assert sorted(on_the_stream) == sorted([*others, str(first.envelope.id), str(second.envelope.id)])
    assert on_the_stream.index(str(first.envelope.id)) < on_the_stream.index(str(second.envelope.id))
