"""The figures stats publishes for tracking (forecasts, usual step durations), read from the JetStream
key-value bucket `shared.bus.FIGURES_BUCKET` and kept a minute in memory. tracking never calls stats: when
the bucket cannot be read, a lookup simply shows no forecast."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from nats.aio.client import Client as NATS
from nats.js.errors import BucketNotFoundError, KeyNotFoundError
from nats.js.kv import KeyValue

from shared.bus import FIGURES_BUCKET

log = logging.getLogger(__name__)
READ_TIMEOUT_SECONDS = 0.5


class FiguresCache:
    def __init__(self, nc: NATS, *, ttl_seconds: float = 60) -> None:
        self._nc, self._ttl = nc, ttl_seconds
        self._kv: KeyValue | None = None
        self._cache: dict[str, tuple[float, dict[str, Any] | None]] = {}

    async def forecast(self, procedure: str) -> dict[str, Any] | None:
        """stats' latest forecast for the procedure, or None (none published yet, or NATS unreachable)."""
        cached = self._cache.get(procedure)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        if not self._nc.is_connected:
            return cached[1] if cached else None
        try:
            value = await asyncio.wait_for(self._read(f"forecast.{procedure}"), READ_TIMEOUT_SECONDS)
        except (BucketNotFoundError, KeyNotFoundError):
            value = None
        except Exception as exc:  # a lookup never fails over a forecast
            log.info("cannot read the forecast of %s now: %r", procedure, exc)
            return cached[1] if cached else None
        self._cache[procedure] = (time.monotonic(), value)
        return value

    async def _read(self, key: str) -> dict[str, Any] | None:
        if self._kv is None:
            self._kv = await self._nc.jetstream().key_value(FIGURES_BUCKET)
        entry = await self._kv.get(key)
        figures: dict[str, Any] | None = json.loads(entry.value) if entry.value else None
        return figures
