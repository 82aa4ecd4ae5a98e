"""Folding events into a reader's own tables, exactly once in effect.

`fold` runs the read-model change, records the event as folded and moves the consumer's position, all in
one PostgreSQL transaction. A redelivered event (ack lost, service killed, relay republished it) finds
itself already folded and changes nothing. A consumer folds each fetched batch in one transaction
(`batch`), each event in a savepoint of it, and acknowledges the batch once it has committed.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any

import asyncpg
from nats.js.errors import NotFoundError

from shared.bus import ConsumerSpec, Nak, PullConsumer, connect
from shared.db import create_pool
from shared.events import ALL_CASES, STREAM, Envelope, EventData
from shared.runtime import Runtime
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

Change = Callable[[asyncpg.Connection], Awaitable[None]]
# How a reader folds one event type: `apply(conn, envelope, data)`, inside the fold's transaction.
Apply = Callable[[asyncpg.Connection, Envelope, Any], Awaitable[None]]
# How a reader moves past an event of a type it does not know yet, inside the fold's transaction.
UnknownApply = Callable[[asyncpg.Connection, Envelope], Awaitable[None]]


# The transaction of the batch being folded, if any (`batch`): each event's fold is a savepoint in it.
_batch: ContextVar[asyncpg.Connection | None] = ContextVar("fold_batch", default=None)


@contextlib.asynccontextmanager
async def batch(pool: asyncpg.Pool) -> AsyncIterator[None]:
    """Fold a fetched batch of events in one transaction: one commit (one fsync) for the batch instead
    of one per event. Each event's fold is a savepoint, so an event that fails (or must wait for an
    earlier one) is undone alone; the consumer acknowledges the batch once this has committed."""
    async with pool.acquire() as conn, conn.transaction():
        token = _batch.set(conn)
        try:
            yield
        finally:
            _batch.reset(token)


async def fold(
    pool: asyncpg.Pool, *, schema: str, consumer: str, event_id: uuid.UUID, stream_seq: int, change: Change
) -> bool:
    """Apply `change` unless this event was folded before. Returns whether it was applied."""
    batch_conn = _batch.get()
    async with contextlib.AsyncExitStack() as stack:
        if batch_conn is not None:
            conn = batch_conn
        else:
            conn = await stack.enter_async_context(pool.acquire())
        # A transaction of its own, or a savepoint in the batch's.
        await stack.enter_async_context(conn.transaction())
        first_time = await conn.fetchval(
            f"INSERT INTO {schema}.folded_events(event_id, stream_seq) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING RETURNING true",
            event_id,
            stream_seq,
        )
        if first_time:
            await change(conn)
        await conn.execute(
            f"INSERT INTO {schema}.consumer_positions(consumer, stream_seq) VALUES ($1, $2) "
            "ON CONFLICT (consumer) DO UPDATE SET stream_seq = "
            f"GREATEST({schema}.consumer_positions.stream_seq, EXCLUDED.stream_seq), updated_at = now()",
            consumer,
            stream_seq,
        )
    return bool(first_time)


class PostgresDeadLetters:
    """A reader's dead letters, in its schema's `dead_letters` table (see `python -m shared.deadletters`)."""

    def __init__(self, pool: asyncpg.Pool, *, schema: str, consumer: str) -> None:
        self._pool, self._schema, self._consumer = pool, schema, consumer

    async def record(self, *, stream_seq: int, subject: str, body: bytes, reason: str) -> None:
        await self._pool.execute(
            f"INSERT INTO {self._schema}.dead_letters(stream_seq, subject, consumer, reason, body) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (stream_seq) DO UPDATE SET reason = EXCLUDED.reason, "
            "recorded_at = now(), replayed_at = NULL",
            stream_seq,
            subject,
            self._consumer,
            reason,
            body,
        )

    async def requested(self) -> list[tuple[int, bytes]]:
        rows = await self._pool.fetch(
            f"SELECT stream_seq, body FROM {self._schema}.dead_letters WHERE consumer = $1 "
            "AND replay_requested_at IS NOT NULL AND replayed_at IS NULL ORDER BY stream_seq LIMIT 100",
            self._consumer,
        )
        return [(r["stream_seq"], bytes(r["body"])) for r in rows]

    async def replayed(self, stream_seq: int) -> None:
        await self._pool.execute(
            f"UPDATE {self._schema}.dead_letters SET replayed_at = now(), replay_requested_at = NULL "
            "WHERE stream_seq = $1",
            stream_seq,
        )

    async def failed_again(self, stream_seq: int, reason: str) -> None:
        await self._pool.execute(
            f"UPDATE {self._schema}.dead_letters SET reason = $2, replay_requested_at = NULL, "
            "recorded_at = now() WHERE stream_seq = $1",
            stream_seq,
            f"replay failed: {reason}",
        )


async def next_workflow_event(
    conn: asyncpg.Connection, *, table: str, case_id: uuid.UUID, version: int
) -> asyncpg.Record | None:
    """A reader's row of the case, locked until the fold commits, if a workflow event of `version` is the
    next one to apply; None if it was applied already. `Nak` (fold it later) if its predecessor or the case
    is not folded yet. `table` has the columns `case_id` and `workflow_version`.

    workflow's events carry the case's version (CaseOpened is 1, then one more per event) and a reader
    applies them strictly in that order, whatever order they arrive in: with several replicas and
    redeliveries, an event may come before its predecessor, or before the case itself."""
    # The lock makes replicas folding two events of one case take turns, so both see the version move.
    case = await conn.fetchrow(f"SELECT * FROM {table} WHERE case_id = $1 FOR UPDATE", case_id)
    if case is None:
        raise Nak("the case is not folded yet")
    if version <= case["workflow_version"]:
        return None
    if version > case["workflow_version"] + 1:
        raise Nak(f"workflow version {case['workflow_version'] + 1} of the case is not folded yet")
    return case


def is_workflow_event(envelope: Envelope) -> bool:
    """Whether an event (maybe of a type this release does not know) is one of workflow's, with a version."""
    return envelope.source == "suivi/workflow" and isinstance(envelope.data.get("version"), int)


async def reset(pool: asyncpg.Pool, *, schema: str, tables: tuple[str, ...]) -> None:
    """Empty a projection's tables and bookkeeping, to fold the stream again from the start."""
    names = ", ".join(
        f"{schema}.{t}" for t in (*tables, "folded_events", "consumer_positions", "dead_letters")
    )
    await pool.execute(f"TRUNCATE {names}")


async def rebuild(settings: ServiceSettings, *, schema: str, consumer: str, tables: tuple[str, ...]) -> None:
    """Empty a reader's read model and delete its durable consumer: started again, the reader folds the
    whole stream from its first event. Every replica of the reader must be stopped first."""
    pool = await create_pool(settings.database_url, max_size=1)
    nc = await connect(settings.nats_url, name=f"{consumer}-rebuild")
    try:
        with contextlib.suppress(NotFoundError):
            await nc.jetstream().delete_consumer(STREAM, consumer)
        await reset(pool, schema=schema, tables=tables)
    finally:
        await nc.close()
        await pool.close()
    log.warning("%s's read model is empty; start %s to fold the stream again", schema, consumer)


def folding_consumer(
    runtime: Runtime,
    *,
    schema: str,
    consumer: str,
    handlers: Mapping[type[EventData], Apply],
    filter_subjects: tuple[str, ...] = (ALL_CASES,),
    unknown: UnknownApply | None = None,
) -> PullConsumer:
    """A durable consumer that folds each event with its handler, exactly once in effect.

    Events with no handler, and events of a type this release does not know yet (a newer producer), are
    still recorded as folded, so the consumer's position tells how far it got; `unknown(conn, envelope)`
    lets a reader move past such an event (e.g. a case's version) in the same transaction. A rebuild folds
    them for real once the reader knows their type.
    """
    pool = runtime.pool

    async def handle(envelope: Envelope, data: EventData, stream_seq: int) -> None:
        apply = handlers.get(type(data))

        async def change(conn: asyncpg.Connection) -> None:
            if apply is not None:
                await apply(conn, envelope, data)

        if (
            await fold(
                pool,
                schema=schema,
                consumer=consumer,
                event_id=envelope.id,
                stream_seq=stream_seq,
                change=change,
            )
            and apply is not None
        ):
            log.info(
                "folded %s", envelope.type, extra={"case_id": envelope.subject, "event_id": str(envelope.id)}
            )

    async def skip(envelope: Envelope, stream_seq: int) -> None:
        async def change(conn: asyncpg.Connection) -> None:
            if unknown is not None:
                await unknown(conn, envelope)

        await fold(
            pool, schema=schema, consumer=consumer, event_id=envelope.id, stream_seq=stream_seq, change=change
        )

    settings = runtime.settings
    pull = PullConsumer(
        runtime.js,
        ConsumerSpec(
            durable=consumer,
            filter_subjects=filter_subjects,
            ack_wait_seconds=settings.consumer_ack_wait_seconds,
            retry_max_seconds=settings.consumer_retry_max_seconds,
            poison_attempts=settings.consumer_poison_attempts,
            replay_poll_seconds=settings.dead_letter_replay_poll_seconds,
        ),
        handle,
        PostgresDeadLetters(pool, schema=schema, consumer=consumer),
        on_unknown=skip,
        batch_scope=lambda: batch(pool),
    )
    runtime.consumers.append(pull)
    return pull
