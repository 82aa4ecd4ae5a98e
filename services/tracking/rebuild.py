"""Rebuild tracking's read model: empty it and fold the whole stream again.

Stop tracking first (every replica), run `python -m services.tracking.rebuild`, start tracking: its
consumer is created anew from the stream's first event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.js.errors import NotFoundError

from services.tracking.consumers import CONSUMER
from services.tracking.projection import SCHEMA, TABLES
from services.tracking.settings import TrackingSettings
from shared import bus
from shared.db import create_pool
from shared.events import STREAM
from shared.projection import reset

log = logging.getLogger(__name__)


async def rebuild(settings: TrackingSettings) -> None:
    pool = await create_pool(settings.database_url, max_size=1)
    nc = await bus.connect(settings.nats_url, name="tracking-rebuild")
    try:
        with contextlib.suppress(NotFoundError):
            await nc.jetstream().delete_consumer(STREAM, CONSUMER)
        await reset(pool, schema=SCHEMA, tables=TABLES)
    finally:
        await nc.close()
        await pool.close()
    log.warning("tracking's read model is empty; start tracking to fold the stream again")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(rebuild(TrackingSettings()))
