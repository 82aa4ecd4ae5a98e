"""Waiting for the system to settle, and reading what it recorded, for tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import httpx

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]], *, until: Callable[[T], bool], timeout: float = 30
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if until(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


async def query(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def scalar(database_url: str, sql: str, *args: Any) -> Any:
    rows = await query(database_url, sql, *args)
    return rows[0][0]


async def tracked(
    tracking: httpx.AsyncClient, case: dict[str, Any], until: Callable[[Any], Any]
) -> dict[str, Any]:
    """tracking's JSON view of `case` (in English) once `until` holds for it."""
    seen = await eventually(
        lambda: tracking.get(f"/v1/track/{case['tracking_code']}", params={"lang": "en"}),
        until=lambda r: r.status_code == 200 and until(r.json()),
    )
    assert seen.status_code == 200 and until(seen.json()), seen.text
    view: dict[str, Any] = seen.json()
    return view
