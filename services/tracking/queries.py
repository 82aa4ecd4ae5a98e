"""tracking's read-side SQL."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg

LOOKUP_POLL_SECONDS = 0.05


# A case and its history in one round trip: the history as three arrays in the same order.
_CASE_BY_DIGEST = """
SELECT c.*, h.history_steps, h.history_kinds, h.history_times
FROM tracking.cases c
LEFT JOIN LATERAL (
    SELECT array_agg(step ORDER BY occurred_at, event_id) AS history_steps,
           array_agg(kind ORDER BY occurred_at, event_id) AS history_kinds,
           array_agg(occurred_at ORDER BY occurred_at, event_id) AS history_times
    FROM tracking.history WHERE case_id = c.case_id
) h ON true
WHERE c.tracking_code_digest = $1
"""


async def find_case(pool: asyncpg.Pool, digest: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    row = await pool.fetchrow(_CASE_BY_DIGEST, digest)
    if row is None:
        return None
    case = dict(row)
    steps, kinds, times = case.pop("history_steps"), case.pop("history_kinds"), case.pop("history_times")
    history = [
        {"step": step, "kind": kind, "occurred_at": at}
        for step, kind, at in zip(steps or (), kinds or (), times or (), strict=True)
    ]
    return case, history


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
