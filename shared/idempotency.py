"""`Idempotency-Key`, the same way for every writer: one effect per key, and every retry gets the first
answer back, status and body, however late.

A key is scoped to who sent it and what it is for (`Idempotent.scope`, e.g. `action:<agent>:<case_id>`):
the same key sent for two cases is two keys. The answers live in the writer's schema, in the table of
`shared/sql/idempotency.sql` (list `"idempotency"` in the app's `shared_sql`).

`once` runs inside the writer's transaction. It first takes a transaction-level advisory lock on the
scope and key, so a second request with the same key waits until the first commits or rolls back, then
replays the first's answer (or, if the first rolled back, does the work itself). Only the lock's holder
inserts the key's row: no unique violation can reach the client.

A writer whose work is one statement (`shared.eventstore.append` with a `Guard`) claims the key in that
statement instead: `claim_in_statement` inserts the key with the answer, and the work is done only if the
insert took. A second request with the same key waits in it for the first's transaction to end (the
primary key's check), then inserts nothing; `replay` gives it the first answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from shared.db import advisory_key
from shared.http import DomainError


class KeyReused(DomainError):
    """The key was already used for a different request (422 in every app's error map)."""

    def __init__(self) -> None:
        super().__init__("error.idempotency_key_reused")


@dataclass(frozen=True)
class Answer:
    """What the client was told: replayed as is to a retry."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Idempotent:
    """A request sent with an `Idempotency-Key`, as the key store sees it."""

    schema: str
    scope: str
    key: str
    request_hash: str


def fingerprint(request: object) -> str:
    """The hash that tells a retry (same request) from a reused key (another request)."""
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


async def once(
    conn: asyncpg.Connection, request: Idempotent | None, work: Callable[[], Awaitable[Answer]]
) -> tuple[Answer, bool]:
    """`work()`'s answer, or the answer stored for this key; and whether it is a replay.

    Call it inside a transaction, with `work` writing through the same connection: the key is recorded
    with the work's effect, or not at all. Raises `KeyReused` if the key came with another request."""
    if request is None:
        return await work(), False
    if (stored := await claim(conn, request)) is not None:
        return stored, True
    answer = await work()
    await remember(conn, request, answer)
    return answer, False


async def claim(conn: asyncpg.Connection, request: Idempotent) -> Answer | None:
    """The answer stored for this key, or None: then this transaction holds the key until it ends, and
    should `remember` its answer. A request with the same key waits here for the holder to finish."""
    lock = advisory_key(f"idempotency:{request.schema}:{request.scope}:{request.key}")
    await conn.execute("SELECT pg_advisory_xact_lock($1)", lock)
    return await replay(conn, request)


async def remember(conn: asyncpg.Connection, request: Idempotent, answer: Answer) -> None:
    """Store the answer of the key `claim`ed in this transaction."""
    await conn.execute(
        f"INSERT INTO {request.schema}.idempotent_requests(scope, key, request_hash, status, body) "
        "VALUES ($1, $2, $3, $4, $5)",
        request.scope,
        request.key,
        request.request_hash,
        answer.status,
        answer.body,
    )


def claim_in_statement(request: Idempotent, answer: Answer, *, first: int) -> tuple[str, list[Any]]:
    """The key's claim as SQL (its parameters numbered from `first`) and its arguments: an insert of the
    key with `answer` that returns a row only if the key was free. For a `Guard`, so that the work is
    done in the same statement only if it did; when it did not, call `replay`."""
    p = [f"${first + i}" for i in range(5)]
    sql = (
        f"INSERT INTO {request.schema}.idempotent_requests(scope, key, request_hash, status, body) "
        f"VALUES ({p[0]}::text, {p[1]}::text, {p[2]}::text, {p[3]}::smallint, {p[4]}::jsonb) "
        "ON CONFLICT DO NOTHING RETURNING true"
    )
    return sql, [request.scope, request.key, request.request_hash, answer.status, answer.body]


async def replay(conn: asyncpg.Connection, request: Idempotent) -> Answer | None:
    """The answer stored for a key, to give again to a retry; None if there is none. Raises `KeyReused`
    if the key came with another request."""
    stored = await conn.fetchrow(
        f"SELECT request_hash, status, body FROM {request.schema}.idempotent_requests "
        "WHERE scope = $1 AND key = $2",
        request.scope,
        request.key,
    )
    if stored is None:
        return None
    if stored["request_hash"] != request.request_hash:
        raise KeyReused()
    return Answer(status=stored["status"], body=stored["body"])


async def answered(pool: asyncpg.Pool, *, schema: str, scope: str, key: str) -> Answer | None:
    """The answer stored for a key, if its request was answered (e.g. for a page showing it again)."""
    stored = await pool.fetchrow(
        f"SELECT status, body FROM {schema}.idempotent_requests WHERE scope = $1 AND key = $2", scope, key
    )
    return Answer(status=stored["status"], body=stored["body"]) if stored else None
