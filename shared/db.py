"""PostgreSQL: the pool each service opens in its lifespan, and versioned migrations per service.

Each service owns one PostgreSQL schema (`intake`, `tracking`, ...). Its migrations are the files
`services/<name>/migrations/NNN_<what>.sql`, applied in order, once, under an advisory lock so that
several replicas starting together do not race. Tables that several services need in the same shape
(the event store and outbox of writers, the fold bookkeeping of readers) come from `shared/sql/` and
are applied as migrations named `shared/<file>`; a later change to such tables is a file
`shared/sql/<name>.NNN-<what>.sql`, applied after `<name>.sql` wherever `<name>` is.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import asyncpg

log = logging.getLogger(__name__)
SHARED_SQL = Path(__file__).parent / "sql"


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_ in ("json", "jsonb"):
        await conn.set_type_codec(type_, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


# Server pids of the pooled connections that took session state (an advisory lock, LISTEN): see
# `holds_session_state`. A pid reused by a later connection only costs that one a full reset.
_with_session_state: set[int] = set()


def holds_session_state(conn: asyncpg.Connection) -> None:
    """Mark a pooled connection that takes session state (a session advisory lock, LISTEN), so that the
    pool resets it fully when it is released (the lock freed for another replica, the LISTEN dropped)."""
    _with_session_state.add(conn.get_server_pid())


async def _reset(conn: asyncpg.Connection) -> None:
    """What the pool does to a released connection, after asyncpg rolled back an open transaction.

    asyncpg's default sends its reset query (`RESET ALL`, `UNLISTEN *`, unlock all advisory locks, close
    cursors) at every release: a round trip per request. The services take such state only on the
    connections `holds_session_state` marks; the others have nothing to reset (`SET LOCAL` ends with its
    transaction)."""
    pid = conn.get_server_pid()
    if pid in _with_session_state:
        _with_session_state.discard(pid)
        await conn.execute(conn.get_reset_query())


async def create_pool(dsn: str, *, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections speak JSON for json/jsonb columns."""
    pool = await asyncpg.create_pool(
        dsn, min_size=1, max_size=max_size, init=_init_connection, command_timeout=30, reset=_reset
    )
    assert pool is not None
    return pool


def _lock_key(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


async def migrate(
    pool: asyncpg.Pool, *, schema: str, directory: Path, shared: tuple[str, ...] = ()
) -> list[str]:
    """Apply the migrations not applied yet; return their names."""
    files = []
    for name in shared:
        files.append((f"shared/{name}", SHARED_SQL / f"{name}.sql"))
        files += [(f"shared/{path.stem}", path) for path in sorted(SHARED_SQL.glob(f"{name}.[0-9]*.sql"))]
    files += [(path.name, path) for path in sorted(directory.glob("*.sql"))]
    applied_now: list[str] = []
    async with pool.acquire() as conn:
        holds_session_state(conn)
        await conn.execute("SELECT pg_advisory_lock($1)", _lock_key(f"migrate:{schema}"))
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(
                f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations '
                "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["name"] for r in await conn.fetch(f'SELECT name FROM "{schema}".schema_migrations')}
            for name, path in files:
                if name in done:
                    continue
                sql = path.read_text(encoding="utf-8").replace("{schema}", schema)
                async with conn.transaction():
                    await conn.execute(f'SET LOCAL search_path TO "{schema}"')
                    await conn.execute(sql)
                    await conn.execute(f'INSERT INTO "{schema}".schema_migrations(name) VALUES ($1)', name)
                log.info("applied migration %s to schema %s", name, schema)
                applied_now.append(name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _lock_key(f"migrate:{schema}"))
    return applied_now


async def ping(pool: asyncpg.Pool) -> Any:
    async with pool.acquire(timeout=2) as conn:
        return await conn.fetchval("SELECT 1", timeout=2)


advisory_key = _lock_key
