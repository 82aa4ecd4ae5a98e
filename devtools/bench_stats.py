"""stats in `make bench`: how fast it folds the stream, beside a raw nats-py pull-consume-and-ack of the
same events in the same run, and how long its JSON series takes to answer.

The events are `make demo`'s history (imported through intake, relayed to JetStream by intake's relay).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
from nats.js.api import AckPolicy, ConsumerConfig

from devtools.history import generate
from devtools.servers import UvicornProcess
from services.intake.imports import import_lines
from shared.db import create_pool
from shared.events import ALL_CASES, STREAM
from shared.procedures import load_catalogue
from shared.settings import DEFAULT_PROCEDURES_DIR

IMPORTED = "case.*.*.imported"
QUERIES = 30


@dataclass
class StatsResult:
    events: int
    raw_events_per_s: float
    fold_events_per_s: float
    query_p50_ms: float

    @property
    def ratio(self) -> float:
        return self.fold_events_per_s / self.raw_events_per_s if self.raw_events_per_s else 0.0

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": round(self.ratio, 3)}


async def _import_history(database_url: str, *, scale: float) -> int:
    catalogue = load_catalogue(DEFAULT_PROCEDURES_DIR)
    lines = [json.dumps(case) for case in generate(catalogue, months=18, scale=scale)]
    pool = await create_pool(database_url, max_size=2)
    try:
        summary = await import_lines(pool, enumerate(lines, start=1), catalogue)
    finally:
        await pool.close()
    return summary.imported


async def _on_the_stream(nats_url: str, *, subjects: str) -> int:
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().stream_info(STREAM, subjects_filter=subjects)
        return sum((info.state.subjects or {}).values())
    finally:
        await nc.close()


async def _raw_consume(nats_url: str, count: int) -> float:
    """Seconds a bare durable pull consumer takes to fetch and ack the stream's `count` events, one ack each."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        config = ConsumerConfig(
            durable_name="bench-raw", ack_policy=AckPolicy.EXPLICIT, filter_subject=ALL_CASES
        )
        sub = await js.pull_subscribe(ALL_CASES, durable="bench-raw", stream=STREAM, config=config)
        started, seen = time.perf_counter(), 0
        while seen < count:
            for msg in await sub.fetch(64, timeout=5):
                await msg.ack()
                seen += 1
        elapsed = time.perf_counter() - started
        await js.delete_consumer(STREAM, "bench-raw")
        return elapsed
    finally:
        await nc.close()


async def _fold_seconds(database_url: str, count: int, *, patience: float) -> float:
    """Seconds between stats' first and last fold of the `count` events (its start-up not counted)."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            folded = await conn.fetchval("SELECT count(*) FROM stats.folded_events")
            if folded >= count:
                span = await conn.fetchval(
                    "SELECT extract(epoch FROM max(folded_at) - min(folded_at)) FROM stats.folded_events"
                )
                return float(span)
            await asyncio.sleep(0.2)
        raise RuntimeError(f"stats folded {folded} of {count} events in {patience:.0f} s")
    finally:
        await conn.close()


def _query_p50_ms(url: str) -> float:
    path = "/v1/stats/procedures/acte-naissance"
    timings = []
    with httpx.Client(base_url=url, timeout=30) as client:
        client.get(path).raise_for_status()  # warm
        for _ in range(QUERIES):
            started = time.perf_counter()
            client.get(path, params={"period": "month"}).raise_for_status()
            timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def measure_stats(
    stack: contextlib.ExitStack, *, env: dict[str, str], logs: Path, options: tuple[str, ...], scale: float
) -> StatsResult:
    """Import a history, time a raw consumer over the whole stream, then start stats and time its fold of
    the same events."""
    database_url, nats_url = env["DATABASE_URL"], env["NATS_URL"]
    imported = asyncio.run(_import_history(database_url, scale=scale))
    deadline = time.monotonic() + 120
    while asyncio.run(_on_the_stream(nats_url, subjects=IMPORTED)) < imported:
        if time.monotonic() > deadline:
            raise RuntimeError("intake's relay did not publish the imported history within 120 s")
        time.sleep(0.2)
    events = asyncio.run(_on_the_stream(nats_url, subjects=ALL_CASES))
    raw_seconds = asyncio.run(_raw_consume(nats_url, events))
    stats = UvicornProcess("services.stats.app", env=env, log=logs / "stats.log", options=options)
    stack.callback(stats.stop)
    stats.start()
    fold_seconds = asyncio.run(_fold_seconds(database_url, events, patience=600))
    return StatsResult(
        events=events,
        raw_events_per_s=round(events / raw_seconds, 1),
        fold_events_per_s=round(events / max(fold_seconds, 1e-3), 1),
        query_p50_ms=round(_query_p50_ms(stats.url), 1),
    )
