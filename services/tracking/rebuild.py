"""Rebuild tracking's read model: empty it and fold the whole stream again.

Stop tracking first (every replica), run `python -m services.tracking.rebuild`, start tracking: its
consumer is created anew from the stream's first event.
"""

from __future__ import annotations

import asyncio
import logging

from services.tracking.consumers import CONSUMER
from services.tracking.projection import SCHEMA, TABLES
from services.tracking.settings import TrackingSettings
from shared import projection


async def rebuild(settings: TrackingSettings) -> None:
    await projection.rebuild(settings, schema=SCHEMA, consumer=CONSUMER, tables=TABLES)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(rebuild(TrackingSettings()))
