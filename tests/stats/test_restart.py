"""stats killed in the middle of folding a history, then restarted, publishes exactly the figures a full
rebuild from the stream gives: nothing folded twice, nothing missed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg

from devtools.history import generate
from services.intake.imports import import_lines
from services.stats.rebuild import rebuild
from services.stats.settings import StatsSettings
from shared.db import create_pool
from shared.procedures import load_catalogue
from shared.settings import DEFAULT_PROCEDURES_DIR
from tests.conftest import Env
from tests.processes import ServiceProcess, service_env
from tests.waiting import eventually, query, scalar

AGGREGATES = (
    "SELECT procedure, month, district, measure, n FROM stats.counts",
    "SELECT procedure, month, district, measure, bin, n FROM stats.bins",
    "SELECT procedure, month, district, measure, n, round(total::numeric, 3) FROM stats.sums",
)


async def aggregates(env: Env) -> list[list[tuple[Any, ...]]]:
    return [sorted(tuple(r) for r in await query(env.database_url, sql)) for sql in AGGREGATES]


async def test_a_stats_killed_mid_fold_resumes_to_the_figures_of_a_rebuild(env: Env, tmp_path: Path) -> None:
    variables = service_env(env.database_url, env.nats_url)
    intake = ServiceProcess("services.intake.app", env=variables, log_dir=tmp_path).start()
    stats = ServiceProcess("services.stats.app", env=variables, log_dir=tmp_path).start()
    try:
        catalogue = load_catalogue(DEFAULT_PROCEDURES_DIR)
        history = [json.dumps(c) for c in generate(catalogue, months=6, scale=0.3)]
        pool: asyncpg.Pool = await create_pool(env.database_url, max_size=2)
        try:
            summary = await import_lines(pool, enumerate(history, start=1), catalogue)
        finally:
            await pool.close()
        assert summary.imported == len(history) > 1000

        await eventually(
            lambda: scalar(env.database_url, "SELECT count(*) FROM stats.cases"),
            until=lambda n: n >= len(history) // 4,
        )
        stats.kill()  # SIGKILL: no graceful shutdown, as when a node dies
        stats.start()
        await eventually(
            lambda: scalar(env.database_url, "SELECT count(*) FROM stats.cases"),
            until=lambda n: n == len(history),
            timeout=120,
        )
        after_kill = await aggregates(env)

        stats.stop()
        await rebuild(StatsSettings(database_url=env.database_url, nats_url=env.nats_url, environment="test"))
        stats.start()
        await eventually(
            lambda: scalar(env.database_url, "SELECT count(*) FROM stats.cases"),
            until=lambda n: n == len(history),
            timeout=120,
        )
        assert await aggregates(env) == after_kill
        assert await scalar(env.database_url, "SELECT count(*) FROM stats.dead_letters") == 0
    finally:
        stats.stop(), intake.stop()
