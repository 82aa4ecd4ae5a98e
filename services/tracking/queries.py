"""tracking's read-side SQL."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg

LOOKUP_POLL_SECONDS = 0.05


Found = tuple[dict[str, Any], list[dict[str, Any]]]

# The case's row holds its history (`history_entry[]`, in the order folded): a lookup is one row by the
# digest's unique index.
_CASE_BY_DIGEST = "SELECT * FROM tracking.cases WHERE tracking_code_digest = $1"
_CASE_BY_ID = "SELECT * FROM tracking.cases WHERE case_id = $1"


def _found(row: asyncpg.Record | None) -> Found | None:
    """The case's columns, and its history in time order (events at the same time by event id)."""
    if row is None:
        return None
    case = dict(row)
    entries = sorted(case.pop("history"), key=lambda entry: (entry["occurred_at"], entry["event_id"]))
    history = [{"step": e["step"], "kind": e["kind"], "occurred_at": e["occurred_at"]} for e in entries]
    return case, history


async def find_case(pool: asyncpg.Pool, digest: str) -> Found | None:
    return _found(await pool.fetchrow(_CASE_BY_DIGEST, digest))


async def wait_for_case(
    pool: asyncpg.Pool, digest: str, *, min_version: int, patience: float
) -> Found | None:
    """The case once it reached `min_version`, polling for up to `patience` seconds (read-your-writes)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while True:
        found = await find_case(pool, digest)
        if (found and found[0]["version"] >= min_version) or loop.time() >= deadline:
            return found
        await asyncio.sleep(LOOKUP_POLL_SECONDS)


async def find_case_by_id(pool: asyncpg.Pool, case_id: uuid.UUID) -> Found | None:
    """A case and its history by its id: a street report's public page, a duplicate's original."""
    return _found(await pool.fetchrow(_CASE_BY_ID, case_id))
