"""A writer's events in PostgreSQL, and the relay that publishes them to JetStream.

`append` writes events and their outbox rows inside the caller's transaction, next to the state change
they record, so an acknowledged request is durable before its HTTP answer. `OutboxRelay` publishes the
outbox in order with `Nats-Msg-Id` = event id (JetStream drops a duplicate within its window), then
marks the rows. A crash between the two republishes, and the duplicate is dropped; PostgreSQL stays the
record, so the bus can always be fed again. One relay per schema works at a time (an advisory lock);
the others wait, ready to take over.

The relay pipelines: the events of a batch go out without waiting for each ack (`_Pipeline`), the acks
are then read in order, and only the rows up to the first event not acknowledged are marked. JetStream
stores what one connection sends in the order it arrives, so each case's events keep their order on the
stream (see CHUNK_BYTES for a connection lost mid-batch); what follows an event not acknowledged is sent
again with it next time, and JetStream drops what it already had. While a full batch is published,
PostgreSQL reads the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import APIError, NoStreamResponseError
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, StatusCode, TraceFlags

from shared.bus import raise_if_cancelling
from shared.db import advisory_key, holds_session_state
from shared.events import STREAM, Envelope
from shared.telemetry import meter, tracer, tracing

log = logging.getLogger(__name__)

published_counter = meter.create_counter(
    "suivi.outbox.published", unit="{event}", description="Events the relay published to JetStream"
)


@dataclass(frozen=True)
class NewEvent:
    envelope: Envelope
    subject: str
    version: int


class VersionConflict(Exception):
    """Another writer appended to this case first."""


@dataclass(frozen=True)
class Guard:
    """The state change the events go with, run in the same statement as their append: `sql` changes
    the state row only if it is as the writer read it (`WHERE ... AND version = $n`) and says so
    (`RETURNING`); the events are recorded only if it returned a row. `then`: more statements, run only
    then too (e.g. `INSERT ... SELECT ... FROM guard`), on the same `args`."""

    sql: str
    args: Sequence[Any]
    then: Sequence[str] = ()


async def append(
    conn: asyncpg.Connection, *, schema: str, events: Sequence[NewEvent], guard: Guard | None = None
) -> bool:
    """Record events and queue them for the relay. Call inside the transaction of the state change, or
    give the state change as `guard` (one statement: atomic without a transaction). Returns whether the
    events were recorded (False: the guard's state row had moved on).

    One statement, one round trip, whatever the number of events: the guard's change, the events, their
    outbox rows in the events' order (the relay publishes by outbox position), and the relay's wake-up."""
    if not events:
        return True
    args: list[Any] = list(guard.args) if guard else []
    n = len(args)
    ctes = (
        [f"guard AS ({guard.sql})", *(f"then_{i} AS ({sql})" for i, sql in enumerate(guard.then))]
        if guard
        else []
    )
    sql = f"""
        WITH {"".join(f"{cte}, " for cte in ctes)}new AS (
            SELECT * FROM unnest(${n + 1}::uuid[], ${n + 2}::uuid[], ${n + 3}::int[], ${n + 4}::text[],
                                 ${n + 5}::text[], ${n + 6}::text[])
                WITH ORDINALITY AS e(event_id, case_id, version, type, subject, body, n)
            {"WHERE EXISTS (SELECT FROM guard)" if guard else ""}
        ), recorded AS (
            INSERT INTO {schema}.events(event_id, case_id, version, type, subject, envelope)
            SELECT event_id, case_id, version, type, subject, body::jsonb FROM new
        ), queued AS (
            INSERT INTO {schema}.outbox(event_id) SELECT event_id FROM new ORDER BY n
        )
        SELECT pg_notify(${n + 7}, '') {"FROM guard" if guard else ""}
        """
    try:
        answered = await conn.fetch(
            sql,
            *args,
            [e.envelope.id for e in events],
            [e.envelope.case_id for e in events],
            [e.version for e in events],
            [e.envelope.type for e in events],
            [e.subject for e in events],
            [e.envelope.model_dump_json() for e in events],
            _channel(schema),
        )
    except asyncpg.UniqueViolationError as exc:
        raise VersionConflict(str(exc)) from exc
    return bool(answered)


def _channel(schema: str) -> str:
    return f"{schema}_outbox"


# Events read from the outbox at a time: 200 went at 0.53× raw nats-py, 500 at 0.6×, 2000 at 0.68×, 4000 at
# 0.71× (devtools/bench_relay.py, 2 CPUs): past 2000 a bigger batch mostly holds more in memory.
BATCH = 2000
# A chunk of the batch is handed to nats-py in one go, without giving the event loop a turn, and the next
# only once every ack of this one is in. nats-py then writes the chunk to the socket in one piece, so a
# connection lost meanwhile loses a tail of it, never a middle: were a chunk split over two connections,
# the events sent over the new one would reach the stream before an earlier one lost with the old one.
# Kept well under nats-py's buffer (2 MiB, flushed early, giving the event loop a turn, when full); and the
# service's other work waits for the event loop at most the time to hand CHUNK_EVENTS (about 15 ms).
CHUNK_BYTES = 1 << 20
CHUNK_EVENTS = 1000
HEADER_BYTES = 400  # an event's headers and protocol line, at most
# nats-py's JetStream request timeout: an ack not back by then is taken as lost.
ACK_TIMEOUT_SECONDS = 5.0


class OutboxRelay:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        js: JetStreamContext,
        schema: str,
        batch: int = BATCH,
        ack_timeout: float = ACK_TIMEOUT_SECONDS,
    ) -> None:
        self._pool, self._js, self._schema, self._batch = pool, js, schema, batch
        self._ack_timeout = ack_timeout
        self._unpublished = _UNPUBLISHED.format(schema=schema)
        self._pipeline = _Pipeline(js._nc)  # the connection `js` reaches JetStream through
        # The batch after the one just published, read while its acks came (see relay_once).
        self._next: tuple[asyncpg.Connection, list[asyncpg.Record]] | None = None
        self._wake = asyncio.Event()

    async def run(self) -> None:
        """Relay forever; survives PostgreSQL and NATS outages by waiting and trying again."""
        while True:
            try:
                await self._hold_lock_and_relay()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise_if_cancelling()
                log.warning("outbox relay of %s paused (%s); retrying in 1 s", self._schema, exc)
                await asyncio.sleep(1)

    async def _hold_lock_and_relay(self) -> None:
        conn: asyncpg.Connection = await self._pool.acquire()
        holds_session_state(conn)  # its lock and LISTEN are let go of when it goes back to the pool
        try:
            key = advisory_key(f"relay:{self._schema}")
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                await asyncio.sleep(1)
            await conn.add_listener(_channel(self._schema), self._on_notify)
            log.info("outbox relay of %s is active", self._schema)
            while True:
                if await self.relay_once(conn) < self._batch:
                    await self._sleep_until_notified(seconds=1)
                    # The lock connection must still be alive for this relay to be the only one.
                    await conn.fetchval("SELECT 1")
        finally:
            with contextlib.suppress(
                Exception
            ):  # a connection cancelled mid-query cannot UNLISTEN; reset will
                await conn.remove_listener(_channel(self._schema), self._on_notify)
            self._next = None
            # Releasing resets the connection (UNLISTEN, advisory locks freed for another relay), even
            # when it was cancelled in the middle of a query.
            await self._pool.release(conn, timeout=2)

    async def _sleep_until_notified(self, *, seconds: float) -> None:
        # asyncio.wait, not wait_for or timeout(): on 3.11 those can swallow a shutdown's cancellation
        # that races the wake-up, and the relay would then never stop.
        self._wake.clear()
        waiter = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({waiter}, timeout=seconds)
        finally:
            waiter.cancel()

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def relay_once(self, conn: asyncpg.Connection) -> int:
        """Publish the next batch of unpublished events, in order. Returns how many it read.

        Raises once an event is not acknowledged (NATS away, no ack in time, an error): the events before
        it are marked published; it and the ones after stay in the outbox for the next try."""
        read, self._next = self._next, None
        batch = read[1] if read and read[0] is conn else await conn.fetch(self._unpublished, self._batch, [])
        published: list[tuple[int, int]] = []
        following: asyncio.Task[list[asyncpg.Record]] | None = None
        try:
            if len(batch) == self._batch:
                # More may be waiting: PostgreSQL reads them while this batch goes to JetStream.
                following = asyncio.create_task(
                    conn.fetch(self._unpublished, self._batch, [row["position"] for row in batch])
                )
                await asyncio.sleep(0)  # the query is sent
            for chunk in _chunks(batch):
                await self._publish(chunk, published)
        finally:
            after = await _read(following)  # the connection is needed again, for the UPDATE
            # One UPDATE for the batch. Rows published but not marked (a crash right here) are published
            # again next time, and JetStream drops them as duplicates of their event id.
            if published:
                await conn.execute(
                    f"UPDATE {self._schema}.outbox o SET published_at = now(), stream_seq = u.seq "
                    "FROM unnest($1::bigint[], $2::bigint[]) AS u(position, seq) WHERE o.position = u.position",
                    [p for p, _ in published],
                    [seq for _, seq in published],
                )
        if after is not None and len(published) == len(batch):
            self._next = (conn, after)  # read past this batch: the next one, now that this one is marked
        return len(batch)

    async def _publish(self, chunk: Sequence[_Row], published: list[tuple[int, int]]) -> None:
        """Send every event without waiting, then take the acks in order: the acknowledged prefix goes
        to `published`; the first event not acknowledged is raised, once the others are let go."""
        await self._pipeline.open()
        traced = tracing()
        sent: list[_Sent] = []
        try:
            try:
                for row, body in chunk:  # no await in here lets the event loop run: see CHUNK_BYTES
                    sent.append(await self._send(row, body, traced=traced))
            finally:
                await _acknowledged([ack for _, _, ack in sent], seconds=self._ack_timeout)
        finally:
            failure = self._settle(sent, published)
        if failure is not None:
            self._pipeline.forget()
            raise failure

    async def _send(self, row: asyncpg.Record, body: bytes, *, traced: bool) -> _Sent:
        # What `shared.bus.event_headers` makes of the envelope (tests/shared/test_relay.py compares them),
        # read by PostgreSQL rather than by parsing each envelope here.
        headers = {
            "Nats-Msg-Id": row["event_id"],
            "ce-type": row["type"],
            "ce-subject": row["case_id"],
            "ce-source": row["source"],
        }
        span = _publish_span(row) if traced else None
        if span is not None:
            context = span.get_span_context()
            headers["traceparent"] = (
                f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
            )
        elif row["traceparent"]:  # no span recorded: the trace goes on from the request that wrote it
            headers["traceparent"] = row["traceparent"]
        try:
            ack = await self._pipeline.publish(row["subject"], body, headers=headers)
        except BaseException as exc:
            _failed(span, exc)
            raise
        return row, span, ack

    def _settle(self, sent: Sequence[_Sent], published: list[tuple[int, int]]) -> Exception | None:
        """Move the acknowledged prefix to `published` and end every span; returns the first failure."""
        failure: Exception | None = None
        new = duplicates = 0
        debug = log.isEnabledFor(logging.DEBUG)
        for row, span, ack in sent:
            outcome = _outcome(ack, timeout=self._ack_timeout)
            if isinstance(outcome, Exception):
                _failed(span, outcome)
                if failure is None:
                    failure = outcome
                    log.warning(
                        "outbox relay of %s: JetStream did not acknowledge %s %s (%s); it and the events "
                        "after it stay in the outbox for the next try",
                        self._schema,
                        row["type"],
                        row["event_id"],
                        outcome,
                        extra=_ids(row),
                    )
                continue
            if span is not None:
                span.end()
            if failure is not None:  # stored or not, it is published again with the one that failed
                continue
            seq, duplicate = outcome
            published.append((row["position"], seq))
            if duplicate:
                duplicates += 1
            else:
                new += 1
            if debug:
                log.debug("published %s as seq %d", row["type"], seq, extra=_ids(row))
        for duplicate, count in ((False, new), (True, duplicates)):
            if count:
                published_counter.add(count, {"schema": self._schema, "duplicate": duplicate})
        return failure


class _Pipeline:
    """Publishes to JetStream without waiting: a future per message, answered on one inbox, in order.

    nats-py's `publish_async` does the same at half the speed (a random token, a semaphore and a PubAck
    object per message, measured with devtools/bench_relay.py), which was most of the relay's time."""

    def __init__(self, nc: NATS) -> None:
        self._nc = nc
        self._inbox = ""
        self._tokens = itertools.count()
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def open(self) -> None:
        if not self._inbox:
            inbox = f"{self._nc.new_inbox()}."
            await self._nc.subscribe(f"{inbox}*", cb=self._answered)  # resubscribed by nats-py on reconnect
            self._inbox = inbox

    async def publish(
        self, subject: str, body: bytes, *, headers: dict[str, str]
    ) -> asyncio.Future[dict[str, Any]]:
        token = str(next(self._tokens))
        ack: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[token] = ack
        headers["Nats-Expected-Stream"] = STREAM  # JetStream refuses it if another stream would take it
        try:
            await self._nc.publish(subject, body, reply=self._inbox + token, headers=headers)
        except BaseException:
            del self._waiting[token]
            raise
        return ack

    def forget(self) -> None:
        """Let go of the publishes given up on: their acks, if they ever come, are ignored."""
        self._waiting = {token: ack for token, ack in self._waiting.items() if not ack.done()}

    async def _answered(self, msg: Msg) -> None:
        ack = self._waiting.pop(msg.subject[len(self._inbox) :], None)
        if ack is None or ack.done():
            return
        if msg.headers and msg.headers.get("Status") == "503":  # no stream takes the subject
            ack.set_exception(NoStreamResponseError())
            return
        try:
            answer = json.loads(msg.data)
            if "error" in answer:
                APIError.from_error(answer["error"])  # raises the error's own class
        except (ValueError, APIError) as exc:
            ack.set_exception(exc)
            return
        ack.set_result(answer)


# The envelope's own fields, read by PostgreSQL for the headers; the body is the stored envelope as
# `Envelope` serialises it, as every reader re-serialises it (notify's webhooks: byte for byte the bus's).
_UNPUBLISHED = (
    "SELECT o.position, e.subject, e.type, e.event_id::text AS event_id, e.envelope, "
    "e.envelope->>'subject' AS case_id, e.envelope->>'source' AS source, "
    "e.envelope->>'traceparent' AS traceparent "
    "FROM {schema}.outbox o JOIN {schema}.events e USING (event_id) "
    "WHERE o.published_at IS NULL AND o.position NOT IN (SELECT unnest($2::bigint[])) "
    "ORDER BY o.position LIMIT $1"
)

_Row = tuple[asyncpg.Record, bytes]  # an outbox row and the body to publish
_Sent = tuple[asyncpg.Record, Span | None, "asyncio.Future[dict[str, Any]]"]


class _NotAcknowledged(TimeoutError):
    """JetStream did not acknowledge a publish in time."""


def _outcome(ack: asyncio.Future[dict[str, Any]], *, timeout: float) -> tuple[int, bool] | Exception:
    """What became of a publish: its stream sequence and whether JetStream already had it, or why not."""
    if not ack.done():
        ack.cancel()  # an ack arriving later is ignored
        return _NotAcknowledged(f"no ack within {timeout:g} s")
    if ack.cancelled():
        return _NotAcknowledged("cancelled")
    error = ack.exception()
    if error is not None:
        return error if isinstance(error, Exception) else _NotAcknowledged(repr(error))
    answer = ack.result()
    if answer.get("stream") != STREAM:
        return RuntimeError(f"stored in stream {answer.get('stream')}, not {STREAM}")
    return int(answer["seq"]), bool(answer.get("duplicate"))


def _publish_span(row: asyncpg.Record) -> Span:
    """The PRODUCER span of one event's publishing, child of the request that wrote it; ended at its ack."""
    return tracer.start_span(
        f"publish {row['type']}",
        context=_parent(row["traceparent"]),
        kind=SpanKind.PRODUCER,
        attributes={
            "case_id": row["case_id"],
            "event_id": row["event_id"],
            "messaging.destination.name": row["subject"],
        },
    )


async def _acknowledged(acks: Sequence[asyncio.Future[Any]], *, seconds: float) -> None:
    """Until every ack is in, or `seconds` are over. They come in order: the last one mostly says it all."""
    if not acks:
        return
    deadline = asyncio.get_running_loop().time() + seconds
    await asyncio.wait({acks[-1]}, timeout=seconds)
    if waiting := [ack for ack in acks if not ack.done()]:
        await asyncio.wait(waiting, timeout=max(0.0, deadline - asyncio.get_running_loop().time()))


def _parent(traceparent: str | None) -> Context | None:
    """The context of the request that wrote the event, from its W3C `traceparent` (version 00, as
    `shared.telemetry` wrote it), parsed here: OpenTelemetry's propagator costs the relay twice as much."""
    if not traceparent or len(traceparent) != len("00-") + 32 + 1 + 16 + 1 + 2:
        return None
    try:
        _, trace_id, span_id, flags = traceparent.split("-")
        parent = SpanContext(
            int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=TraceFlags(int(flags, 16))
        )
    except ValueError:
        return None  # as the propagator: a new trace
    return trace.set_span_in_context(NonRecordingSpan(parent)) if parent.is_valid else None


async def _read(fetching: asyncio.Task[list[asyncpg.Record]] | None) -> list[asyncpg.Record] | None:
    """The rows a read started beforehand gave, once it is over; None if there was none or it failed."""
    if fetching is None:
        return None
    await asyncio.wait({fetching})
    if fetching.cancelled() or fetching.exception() is not None:
        return None
    return fetching.result()


def _failed(span: Span | None, exc: BaseException) -> None:
    if span is not None:
        span.set_status(StatusCode.ERROR, str(exc))
        span.end()


def _ids(row: asyncpg.Record) -> dict[str, str]:
    return {"case_id": row["case_id"], "event_id": row["event_id"]}


def _chunks(rows: Sequence[asyncpg.Record]) -> list[list[_Row]]:
    """The batch with each body encoded, cut where a piece would exceed CHUNK_BYTES or CHUNK_EVENTS."""
    chunks: list[list[_Row]] = [[]]
    size = 0
    for row in rows:
        body = Envelope.model_validate(row["envelope"]).model_dump_json().encode()
        size += len(body) + HEADER_BYTES
        if chunks[-1] and (size > CHUNK_BYTES or len(chunks[-1]) >= CHUNK_EVENTS):
            chunks.append([])
            size = len(body) + HEADER_BYTES
        chunks[-1].append((row, body))
    return [chunk for chunk in chunks if chunk]
