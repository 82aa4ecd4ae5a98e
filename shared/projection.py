"""Folding events into a reader's own tables, exactly once in effect.

`fold` runs the read-model change, records the event as folded and moves the consumer's position, all in
one PostgreSQL transaction. A redelivered event (ack lost, service killed, relay republished it) finds
itself already folded and changes nothing.

A consumer folds each fetched batch in one transaction, and acknowledges it once that has committed:
- the fast way (`fold_all`): the batch's event ids recorded as folded in one statement, which says which
  are new; the changes of the new ones, in stream order; the position moved once, to the batch's last;
- the careful way, when the fast way fails for an event of the batch (it must wait for an earlier one,
  or its handler fails): rolled back, and the batch folded again with each event in a savepoint of the
  transaction (`batch`, `fold`), so that the event is undone alone and the consumer's ack policy decides
  for it as for a lone event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

import asyncpg
from nats.js.errors import NotFoundError

from shared.bus import ConsumerSpec, Delivery, Nak, PullConsumer, connect
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

# Events a consumer fetches, and folds, together: the transaction and its commit are shared by as many.
FOLD_BATCH = 256


def _record_sql(schema: str) -> str:
    return (
        f"INSERT INTO {schema}.folded_events(event_id, stream_seq) VALUES ($1, $2) "
        "ON CONFLICT DO NOTHING RETURNING true"
    )


def _record_all_sql(schema: str) -> str:
    return (
        f"INSERT INTO {schema}.folded_events(event_id, stream_seq) "
        "SELECT * FROM unnest($1::uuid[], $2::bigint[]) ON CONFLICT DO NOTHING RETURNING event_id"
    )


def _position_sql(schema: str) -> str:
    return (
        f"INSERT INTO {schema}.consumer_positions(consumer, stream_seq) VALUES ($1, $2) "
        "ON CONFLICT (consumer) DO UPDATE SET stream_seq = "
        f"GREATEST({schema}.consumer_positions.stream_seq, EXCLUDED.stream_seq), updated_at = now()"
    )


@contextlib.asynccontextmanager
async def batch(pool: asyncpg.Pool) -> AsyncIterator[None]:
    """Fold a fetched batch of events in one transaction, the careful way: one commit (one fsync) for the
    batch, and each event's fold a savepoint, so that an event that fails (or must wait for an earlier one)
    is undone alone; the consumer acknowledges the batch once this has committed."""
    async with pool.acquire() as conn, conn.transaction():
        token = _batch.set(conn)
        try:
            yield
        finally:
            _batch.reset(token)


class Kept(Protocol):
    """Something a reader keeps while a fold lasts (`kept`), written out before the fold commits."""

    async def flush(self, conn: asyncpg.Connection) -> None: ...


K = TypeVar("K", bound=Kept)
# What the readers keep while the fold under way lasts, by name (`kept`).
_kept: ContextVar[dict[str, Kept] | None] = ContextVar("fold_kept", default=None)


def kept(name: str, make: Callable[[], K]) -> K | None:
    """The reader's `name` (made by `make` the first time) for the fold under way, None outside a fold.

    A fold is one transaction the fast way, one event's savepoint the careful way: what is kept during
    it (additions to write once instead of once per event, what a lock held until the commit lets one
    read once) is flushed (`Kept.flush`) before it ends, and dropped with it if it fails."""
    found = _kept.get()
    if found is None:
        return None
    if name not in found:
        found[name] = make()
    return found[name]  # type: ignore[return-value]


@contextlib.asynccontextmanager
async def _fold_scope(conn: asyncpg.Connection) -> AsyncIterator[None]:
    scope: dict[str, Kept] = {}
    token = _kept.set(scope)
    try:
        yield
        for name in list(scope):
            await scope[name].flush(conn)
    finally:
        _kept.reset(token)


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
        first_time = await conn.fetchval(_record_sql(schema), event_id, stream_seq)
        if first_time:
            async with _fold_scope(conn):
                await change(conn)
        await conn.execute(_position_sql(schema), consumer, stream_seq)
    return bool(first_time)


async def fold_all(
    pool: asyncpg.Pool,
    *,
    schema: str,
    consumer: str,
    deliveries: list[Delivery],
    change_of: Callable[[Delivery], Change | None],
) -> int:
    """Fold a batch in one transaction, the fast way: its event ids recorded as folded in one statement,
    the change (`change_of`, None for none) of each event folded for the first time, in stream order, and
    the position moved once. Raises, leaving nothing behind, if any change fails (or raises `Nak`): the
    caller then folds the batch the careful way. Returns how many events were new."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            _record_all_sql(schema), [d.envelope.id for d in deliveries], [d.seq for d in deliveries]
        )
        new = {row["event_id"] for row in rows}
        folded = len(new)
        changes: list[tuple[Delivery, Change]] = []
        for delivery in deliveries:
            if delivery.envelope.id not in new:
                continue  # folded before, or earlier in this batch (the same event published twice)
            new.discard(delivery.envelope.id)
            if (change := change_of(delivery)) is not None:
                changes.append((delivery, change))
        side_by_side = _SIDE_BY_SIDE.get(schema)
        async with _fold_scope(conn):
            if side_by_side is None:
                await _apply_in_order(conn, changes)
            else:
                key, prepare = side_by_side
                if prepare is not None:
                    await prepare(conn, [(d.envelope, d.data) for d, _ in changes])
                await SideBySide(conn).apply(changes, key=key)
        await conn.execute(_position_sql(schema), consumer, max(d.seq for d in deliveries))
    return folded


async def _apply_in_order(conn: asyncpg.Connection, changes: list[tuple[Delivery, Change]]) -> None:
    for delivery, change in changes:
        with delivery.span():
            await change(conn)


# Before a batch's keys are folded side by side: what must be done first, in order (`fold_side_by_side`).
Prepare = Callable[[asyncpg.Connection, list[tuple[Envelope, EventData | None]]], Awaitable[None]]
# Readers whose events of two keys (`fold_side_by_side`) never change the same rows.
_SIDE_BY_SIDE: dict[str, tuple[Callable[[Envelope], str], Prepare | None]] = {}


def fold_side_by_side(schema: str, *, key: Callable[[Envelope], str], prepare: Prepare | None = None) -> None:
    """Declare that the reader of `schema` changes, for an event, only rows of its `key` (its case), or
    additions that commute (counts): the fast way then folds each key's events in stream order and the keys
    side by side, on the batch's connection, sending together the statements they send at the same moment
    (`SideBySide`). The result is the one of folding the batch in stream order, since the keys' changes
    commute. `prepare(conn, events)`, if given, runs first, in the batch's fold: what the events of several
    keys depend on (stats: the months they see end) is done there, once, in order."""
    _SIDE_BY_SIDE[schema] = (key, prepare)


_Call = tuple[str, str]  # asyncpg's method, and the statement
_Waiting = tuple[tuple[Any, ...], "asyncio.Future[Any]"]


class SideBySide:
    """Stands in for the batch's connection while its keys are folded side by side: a key's fold sends one
    statement at a time and waits for its answer, as on a connection; once every key waits, the statements
    they wait on are sent, one round trip for each statement text (asyncpg's `executemany`, `fetchmany`),
    and each gets its own answer. An `execute` sent with others answers an empty status, and rows fetched
    with others have one more column, last (`side_by_side`). Anything else asked of it goes to the
    connection (and fails, the connection being busy, if it comes while a round trip is under way: the
    batch is then folded the careful way)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self._calls: dict[_Call, list[_Waiting]] = {}
        self._waiting = 0
        self._unfinished = 0
        self._all_waiting = asyncio.Event()

    async def apply(self, changes: list[tuple[Delivery, Change]], *, key: Callable[[Envelope], str]) -> None:
        by_key: dict[str, list[tuple[Delivery, Change]]] = {}
        for delivery, change in changes:
            by_key.setdefault(key(delivery.envelope), []).append((delivery, change))
        if len(by_key) < 2:
            await _apply_in_order(self._conn, changes)
            return
        self._unfinished = len(by_key)
        tasks = [asyncio.create_task(self._fold_key(key_changes)) for key_changes in by_key.values()]
        try:
            while self._unfinished:
                await self._all_waiting.wait()
                self._all_waiting.clear()
                for task in tasks:
                    if task.done() and (failure := task.exception()) is not None:
                        raise failure
                await self._send()
            for task in tasks:
                task.result()  # a failure of the last key to finish
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _fold_key(self, changes: list[tuple[Delivery, Change]]) -> None:
        try:
            for delivery, change in changes:
                with delivery.span():
                    await change(self)
        finally:
            self._unfinished -= 1
            self._check_all_waiting()

    def _check_all_waiting(self) -> None:
        if self._waiting == self._unfinished:
            self._all_waiting.set()

    async def _ask(self, method: str, query: str, args: tuple[Any, ...]) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._calls.setdefault((method, query), []).append((args, future))
        self._waiting += 1
        self._check_all_waiting()
        return await future

    async def _send(self) -> None:
        calls, self._calls = self._calls, {}
        for (method, query), waiting in calls.items():
            self._waiting -= len(waiting)
            try:
                answers = await self._answers(method, query, [args for args, _ in waiting])
            except Exception as exc:
                for _, future in waiting:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), answer in zip(waiting, answers, strict=True):
                if not future.done():
                    future.set_result(answer)

    async def _answers(self, method: str, query: str, calls: list[tuple[Any, ...]]) -> list[Any]:
        conn = self._conn
        # A statement with a WITH of its own cannot be wrapped in another to tell its calls' rows apart
        # (its data-modifying parts must stay at the top): its calls are sent one after the other.
        if len(calls) == 1 or (method.startswith("fetch") and query.lstrip()[:5].upper() == "WITH "):
            return [await getattr(conn, method)(query, *args) for args in calls]
        if method == "execute":
            await conn.executemany(query, calls)
            return [""] * len(calls)
        if method == "executemany":
            await conn.executemany(query, [row for (rows,) in calls for row in rows])
            return [None] * len(calls)
        per_call = await self._rows(query, calls)
        if method == "fetch":
            return per_call
        if method == "fetchrow":
            return [found[0] if found else None for found in per_call]
        return [found[0][0] if found else None for found in per_call]  # fetchval

    async def _rows(self, query: str, calls: list[tuple[Any, ...]]) -> list[list[asyncpg.Record]]:
        """Each call's rows, told apart by a last column numbering the calls (`side_by_side`)."""
        tag = len(calls[0]) + 1
        rows = await self._conn.fetchmany(
            f"WITH answer AS ({query}) SELECT answer.*, ${tag}::int AS side_by_side FROM answer",
            [(*args, n) for n, args in enumerate(calls)],
        )
        per_call: list[list[asyncpg.Record]] = [[] for _ in calls]
        for row in rows:
            per_call[row[-1]].append(row)
        return per_call

    async def execute(self, query: str, *args: Any) -> str:
        answer: str = await self._ask("execute", query, args)
        return answer

    async def executemany(self, query: str, args: Iterable[Sequence[Any]]) -> None:
        await self._ask("executemany", query, (list(args),))

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._ask("fetch", query, args)
        return rows

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._ask("fetchrow", query, args)
        return row

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self._ask("fetchval", query, args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


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
    return case if next_in_order(case, version) else None


def next_in_order(case: Mapping[str, Any] | None, version: int) -> bool:
    """Whether a workflow event of `version` is the next one to apply to `case` (a reader's row of it,
    locked, with its `workflow_version`); False if it was applied already; `Nak` if the case or the event's
    predecessor is not folded yet (`next_workflow_event`)."""
    if case is None:
        raise Nak("the case is not folded yet")
    if version <= case["workflow_version"]:
        return False
    if version > case["workflow_version"] + 1:
        raise Nak(f"workflow version {case['workflow_version'] + 1} of the case is not folded yet")
    return True


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

    def change_of(envelope: Envelope, data: EventData | None) -> Change | None:
        if data is None:
            if unknown is None:
                return None
            return lambda conn: unknown(conn, envelope)
        apply = handlers.get(type(data))
        if apply is None:
            return None
        return lambda conn: apply(conn, envelope, data)

    async def handle(envelope: Envelope, data: EventData, stream_seq: int) -> None:
        change = change_of(envelope, data)

        async def apply(conn: asyncpg.Connection) -> None:
            if change is not None:
                await change(conn)

        folded = await fold(
            pool, schema=schema, consumer=consumer, event_id=envelope.id, stream_seq=stream_seq, change=apply
        )
        if folded and change is not None:
            log.info(
                "folded %s", envelope.type, extra={"case_id": envelope.subject, "event_id": str(envelope.id)}
            )

    async def skip(envelope: Envelope, stream_seq: int) -> None:
        change = change_of(envelope, None)

        async def apply(conn: asyncpg.Connection) -> None:
            if change is not None:
                await change(conn)

        await fold(
            pool, schema=schema, consumer=consumer, event_id=envelope.id, stream_seq=stream_seq, change=apply
        )

    async def fold_batch(deliveries: list[Delivery]) -> None:
        new = await fold_all(
            pool,
            schema=schema,
            consumer=consumer,
            deliveries=deliveries,
            change_of=lambda d: change_of(d.envelope, d.data),
        )
        log.info(
            "%s folded seq %d to %d: %d event(s), %d new",
            consumer,
            deliveries[0].seq,
            deliveries[-1].seq,
            len(deliveries),
            new,
            extra={"consumer": consumer},
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
            batch=FOLD_BATCH,
        ),
        handle,
        PostgresDeadLetters(pool, schema=schema, consumer=consumer),
        on_unknown=skip,
        batch_scope=lambda: batch(pool),
        fold_batch=fold_batch,
    )
    runtime.consumers.append(pull)
    return pull
