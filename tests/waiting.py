"""Waiting for the system to settle, and reading what it recorded, for tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

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
