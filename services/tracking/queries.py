"""tracking's read-side SQL."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg

LOOKUP_POLL_SECONDS = 0.05


async def find_case(pool: asyncpg.Pool, digest: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    async with pool.acquire() as conn:
        case = await conn.fetchrow("SELECT * FROM tracking.cases WHERE tracking_code_digest = $1", digest)
        if case is None:
            return None
        history = await conn.fetch(
            "SELECT step, kind, occurred_at FROM tracking.history "
            "WHERE case_id = $1 ORDER BY occurred_at, event_id",
            case["case_id"],
        )
    return dict(case), [dict(h) for h in history]


async def wait_for_case(
    pool: asyncpg.Pool, digest: str, *, min_version: int, patience: float
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The case once it reached `min_version`, polling for up to `patience` seconds (read-your-writes)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while True:
        found = await find_case(pool, digest)
        if (found and found[0]["version"] >= min_version) or loop.time() >= deadline:
            return found
        await asyncio.sleep(LOOKUP_POLL_SECONDS)


async def find_case_by_id(
    pool: asyncpg.Pool, case_id: uuid.UUID
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """A case and its history by its id: a street report's public page, a duplicate's original."""
    async with pool.acquire() as conn:
        case = await conn.fetchrow("SELECT * FROM tracking.cases WHERE case_id = $1", case_id)
        if case is None:
            return None
        history = await conn.fetch(
            "SELECT step, kind, occurred_at FROM tracking.history "
            "WHERE case_id = $1 ORDER BY occurred_at, event_id",
            case_id,
        )
    return dict(case), [dict(h) for h in history]
