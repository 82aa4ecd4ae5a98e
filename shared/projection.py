"""Folding events into a reader's own tables, exactly once in effect.

`fold` runs the read-model change, records the event as folded and moves the consumer's position, all in
one PostgreSQL transaction. A redelivered event (ack lost, service killed, relay republished it) finds
itself already folded and changes nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg
from nats.aio.msg import Msg

from shared.bus import ConsumerSpec, PullConsumer
from shared.events import ALL_CASES, Envelope, EventData
from shared.runtime import Runtime

log = logging.getLogger(__name__)

Change = Callable[[asyncpg.Connection], Awaitable[None]]
# How a reader folds one event type: `apply(conn, envelope, data)`, inside the fold's transaction.
Apply = Callable[[asyncpg.Connection, Envelope, Any], Awaitable[None]]


async def fold(
    pool: asyncpg.Pool, *, schema: str, consumer: str, event_id: uuid.UUID, stream_seq: int, change: Change
) -> bool:
    """Apply `change` unless this event was folded before. Returns whether it was applied."""
    async with pool.acquire() as conn, conn.transaction():
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


def dead_letter_recorder(
    pool: asyncpg.Pool, *, schema: str, consumer: str
) -> Callable[[Msg, str], Awaitable[None]]:
    async def record(msg: Msg, reason: str) -> None:
        await pool.execute(
            f"INSERT INTO {schema}.dead_letters(stream_seq, subject, consumer, reason, body) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (stream_seq) DO UPDATE SET reason = EXCLUDED.reason",
            msg.metadata.sequence.stream,
            msg.subject,
            consumer,
            reason,
            msg.data,
        )

    return record


async def reset(pool: asyncpg.Pool, *, schema: str, tables: tuple[str, ...]) -> None:
    """Empty a projection's tables and bookkeeping, to fold the stream again from the start."""
    names = ", ".join(
        f"{schema}.{t}" for t in (*tables, "folded_events", "consumer_positions", "dead_letters")
    )
    await pool.execute(f"TRUNCATE {names}")


def folding_consumer(
    runtime: Runtime,
    *,
    schema: str,
    consumer: str,
    handlers: Mapping[type[EventData], Apply],
    filter_subjects: tuple[str, ...] = (ALL_CASES,),
) -> PullConsumer:
    """A durable consumer that folds each event with its handler, exactly once in effect.

    Events with no handler are still recorded as folded, so the consumer's position tells how far it got.
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

    return PullConsumer(
        runtime.js,
        ConsumerSpec(durable=consumer, filter_subjects=filter_subjects),
        handle,
        dead_letter_recorder(pool, schema=schema, consumer=consumer),
    )
