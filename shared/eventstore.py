"""A writer's events in PostgreSQL, and the relay that publishes them to JetStream.

`append` writes events and their outbox rows inside the caller's transaction, next to the state change
they record, so an acknowledged request is durable before its HTTP answer. `OutboxRelay` publishes the
outbox in order with `Nats-Msg-Id` = event id (JetStream drops a duplicate within its window), then
marks the rows. A crash between the two republishes, and the duplicate is dropped; PostgreSQL stays the
record, so the bus can always be fed again. One relay per schema works at a time (an advisory lock);
the others wait, ready to take over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from nats.js import JetStreamContext

from shared.bus import event_headers, raise_if_cancelling
from shared.db import advisory_key
from shared.events import STREAM, Envelope
from shared.telemetry import meter, producer_span

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


async def append(conn: asyncpg.Connection, *, schema: str, events: Sequence[NewEvent]) -> None:
    """Record events and queue them for the relay. Call inside the transaction of the state change."""
    try:
        for e in events:
            await conn.execute(
                f"INSERT INTO {schema}.events(event_id, case_id, version, type, subject, envelope) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                e.envelope.id,
                e.envelope.case_id,
                e.version,
                e.envelope.type,
                e.subject,
                e.envelope.model_dump(mode="json"),
            )
            await conn.execute(f"INSERT INTO {schema}.outbox(event_id) VALUES ($1)", e.envelope.id)
    except asyncpg.UniqueViolationError as exc:
        raise VersionConflict(str(exc)) from exc
    await conn.execute("SELECT pg_notify($1, '')", _channel(schema))


def _channel(schema: str) -> str:
    return f"{schema}_outbox"


class OutboxRelay:
    def __init__(self, *, pool: asyncpg.Pool, js: JetStreamContext, schema: str, batch: int = 200) -> None:
        self._pool, self._js, self._schema, self._batch = pool, js, schema, batch
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
        """Publish the next batch of unpublished events, in order. Returns how many."""
        rows = await conn.fetch(
            f"SELECT o.position, e.envelope, e.subject FROM {self._schema}.outbox o "
            f"JOIN {self._schema}.events e USING (event_id) "
            "WHERE o.published_at IS NULL ORDER BY o.position LIMIT $1",
            self._batch,
        )
        published: list[tuple[int, int]] = []
        try:
            for row in rows:
                published.append((row["position"], await self._publish(row["envelope"], row["subject"])))
        finally:
            # One UPDATE for the batch. Rows published but not marked (a crash right here) are published
            # again next time, and JetStream drops them as duplicates of their event id.
            if published:
                await conn.execute(
                    f"UPDATE {self._schema}.outbox o SET published_at = now(), stream_seq = u.seq "
                    "FROM unnest($1::bigint[], $2::bigint[]) AS u(position, seq) WHERE o.position = u.position",
                    [p for p, _ in published],
                    [seq for _, seq in published],
                )
        return len(rows)

    async def _publish(self, stored: dict[str, object], subject: str) -> int:
        envelope = Envelope.model_validate(stored)
        ids = {"case_id": envelope.subject, "event_id": str(envelope.id)}
        with producer_span(
            f"publish {envelope.type}",
            traceparent=envelope.traceparent,
            attributes={**ids, "messaging.destination.name": subject},
        ) as traceparent:
            ack = await self._js.publish(
                subject,
                envelope.model_dump_json().encode(),
                stream=STREAM,
                headers=event_headers(envelope, traceparent=traceparent),
            )
        published_counter.add(1, {"schema": self._schema, "duplicate": bool(ack.duplicate)})
        log.debug("published %s as seq %d", envelope.type, ack.seq, extra=ids)
        return int(ack.seq)
