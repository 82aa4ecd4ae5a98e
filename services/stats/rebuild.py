"""Rebuild stats' figures: empty them and fold the whole stream again.

Stop stats first (every replica), run `python -m services.stats.rebuild`, start stats: its consumer is
created anew from the stream's first event.
"""

from __future__ import annotations

import asyncio
import logging

from services.stats.consumers import CONSUMER
from services.stats.projection import SCHEMA, TABLES
from services.stats.settings import StatsSettings
from shared import projection


async def rebuild(settings: StatsSettings) -> None:
    await projection.rebuild(settings, schema=SCHEMA, consumer=CONSUMER, tables=TABLES)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(rebuild(StatsSettings()))
