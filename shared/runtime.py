"""What a service holds while it runs: its pool, its NATS connection, its background tasks.

Opened in the FastAPI lifespan (never at import time) and closed when the app stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from shared import bus
from shared.db import create_pool, migrate, ping
from shared.http import ReadinessCheck
from shared.settings import ServiceSettings
from shared.telemetry import setup_telemetry

log = logging.getLogger(__name__)
STARTUP_PATIENCE_SECONDS = 30


@dataclass
class Runtime:
    settings: ServiceSettings
    pool: asyncpg.Pool
    nc: NATS
    js: JetStreamContext
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[object]]] = field(default_factory=list)
    consumers: list[bus.PullConsumer] = field(default_factory=list)

    def start(self, coro: Coroutine[Any, Any, None], *, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(_report_crash)
        self.tasks.append(task)

    def readiness_checks(self) -> dict[str, ReadinessCheck]:
        async def nats_check() -> None:
            if not self.nc.is_connected:
                raise ConnectionError("not connected")
            await self.nc.flush(timeout=2)

        return {"postgresql": lambda: ping(self.pool), "nats": nats_check}

    def lagging(self) -> dict[str, dict[str, object]]:
        """The consumers that are behind the stream or held up, and by how much (for `/readyz`)."""
        return {c.name: c.lag.public() for c in self.consumers if c.lag.pending or c.lag.waiting_since}


async def stop_tasks(tasks: list[asyncio.Task[None]], *, patience: float = 10) -> None:
    """Cancel the tasks, again and again: on Python 3.11 a library's `asyncio.wait_for` (nats-py's request,
    for one) can swallow a cancellation that lands just as its future completes."""
    deadline = asyncio.get_running_loop().time() + patience
    while pending := [t for t in tasks if not t.done()]:
        if asyncio.get_running_loop().time() > deadline:
            log.error("background tasks did not stop: %s", ", ".join(t.get_name() for t in pending))
            return
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.2)


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s stopped: %r", task.get_name(), task.exception())


async def _patiently(what: str, attempt: Any) -> Any:
    deadline = asyncio.get_running_loop().time() + STARTUP_PATIENCE_SECONDS
    while True:
        try:
            return await attempt()
        # A NATS cluster forming, or electing its JetStream meta leader, answers no one or "temporarily
        # unavailable" for a few seconds: as patient with it as with a server not up yet.
        except (
            TimeoutError,
            OSError,
            asyncpg.PostgresError,
            nats.errors.NoRespondersError,
            nats.js.errors.ServiceUnavailableError,
        ) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"cannot reach {what} after {STARTUP_PATIENCE_SECONDS} s: {exc}") from exc
            log.warning("waiting for %s: %s", what, exc)
            await asyncio.sleep(1)


@asynccontextmanager
async def open_runtime(
    settings: ServiceSettings, *, service: str, schema: str, migrations: Path, shared_sql: tuple[str, ...]
) -> AsyncIterator[Runtime]:
    setup_telemetry(service=service)
    pool: asyncpg.Pool = await _patiently(
        "PostgreSQL (DATABASE_URL)", lambda: create_pool(settings.database_url, max_size=settings.db_pool_max)
    )
    try:
        await migrate(pool, schema=schema, directory=migrations, shared=shared_sql)
        nc: NATS = await _patiently("NATS (NATS_URL)", lambda: bus.connect(settings.nats_url, name=service))
        try:
            js = nc.jetstream()
            await _patiently(
                "the JetStream stream CASES (NATS_URL)",
                lambda: bus.ensure_stream(js, replicas=settings.stream_replicas),
            )
            runtime = Runtime(settings=settings, pool=pool, nc=nc, js=js)
            try:
                yield runtime
            finally:
                await stop_tasks(runtime.tasks)
                await asyncio.gather(*(close() for close in runtime.closers), return_exceptions=True)
        finally:
            try:
                await nc.close()
            except Exception as exc:  # the server may already be gone; nothing is left to flush
                log.warning("closing the NATS connection: %s", exc)
    finally:
        try:
            await asyncio.wait_for(pool.close(), timeout=10)
        except TimeoutError:
            log.warning("PostgreSQL connections still busy after 10 s at shutdown; closing them")
            pool.terminate()
