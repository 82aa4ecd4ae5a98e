"""What a case at a given step can expect, read from the cases decided in the last months, and published
for tracking in the figures bucket (`shared.bus.figures_bucket`, key `forecast.<procedure>`).

For each step: the p50 and p90 of the time similar recent cases still took, from entering that step to
their decision, scaled by the current backlog (open cases now, against the average at the end of the
window's months: more cases waiting, longer waits); and the step's usual duration, once measured on
enough cases. Too few cases: no figure (tracking says so).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
from nats.js.kv import KeyValue

from services.stats import domain, queries
from services.stats.report import Aggregates, Figures, Period
from shared.bus import is_transient, raise_if_cancelling
from shared.procedures import Catalogue

log = logging.getLogger(__name__)
WINDOW_MONTHS = 6
FACTOR_BOUNDS = (0.8, 1.5)


def window(now: datetime) -> list[date]:
    this_month = domain.month_of(now)
    index = this_month.year * 12 + this_month.month - 1 - WINDOW_MONTHS
    return domain.months_between(date(index // 12, index % 12 + 1, 1), this_month)


def backlog_factor(figures: Figures, months: list[date], open_now: int) -> float:
    past = [figures.backlog(m).open.n or 0 for m in months[:-1]]
    usual = sum(past) / len(past) if past else 0
    if not usual or not open_now:
        return 1.0
    low, high = FACTOR_BOUNDS
    return round(min(high, max(low, open_now / usual)), 2)


def procedure_forecast(
    data: Aggregates, *, steps: list[str], window: Period, open_now: int, now: datetime, min_cases: int
) -> dict[str, Any]:
    """`data` holds the window's durations (`queries.FORECAST`) and the backlog of its past months."""
    figures = Figures(data, threshold=1)
    factor = backlog_factor(figures, window.months, open_now)
    out: dict[str, Any] = {}
    for step in steps:
        remaining = domain.distribution(data.merged(window.months, f"remaining:{step}"))
        usual = domain.distribution(data.merged(window.months, f"step:{step}"))
        enough = remaining.n >= min_cases and remaining.p50 is not None and remaining.p90 is not None
        out[step] = {
            "n": remaining.n,
            "p50_days": domain.in_days(remaining.p50 * factor) if enough and remaining.p50 else None,
            "p90_days": domain.in_days(remaining.p90 * factor) if enough and remaining.p90 else None,
            "usual_days": domain.in_days(usual.p50) if usual.n >= min_cases else None,
            "usual_n": usual.n,
        }
    return {
        "updated_at": now.isoformat(),
        "window_months": WINDOW_MONTHS,
        "backlog_factor": factor,
        "min_cases": min_cases,
        "steps": out,
    }


async def publish_forecasts(pool: asyncpg.Pool, kv: KeyValue, catalogue: Catalogue, *, min_cases: int) -> int:
    now, published = datetime.now(UTC), 0
    months = window(now)
    whole = Period(f"{months[0]:%Y-%m}/{months[-1]:%Y-%m}", months)
    for code in catalogue.codes():
        procedure = catalogue.latest(code)
        if procedure is None:
            continue
        data = await queries.aggregates(
            pool,
            procedure=code,
            district="",
            periods=[whole],
            now=now,
            measures=queries.FORECAST,
            backlog=months[:-1],
        )
        open_now = await queries.open_cases(pool, code)
        steps = [s.code for s in procedure.steps if s.outcome is None]
        forecast = procedure_forecast(
            data, steps=steps, window=whole, open_now=open_now, now=now, min_cases=min_cases
        )
        await kv.put(f"forecast.{code}", json.dumps({"procedure": code, **forecast}).encode())
        published += 1
    return published


async def keep_forecasts_published(
    pool: asyncpg.Pool, kv: KeyValue, catalogue: Catalogue, *, every: float, min_cases: int
) -> None:
    while True:
        try:
            count = await publish_forecasts(pool, kv, catalogue, min_cases=min_cases)
            log.debug("published the forecasts of %d procedures", count)
        except Exception as exc:
            raise_if_cancelling()
            if not is_transient(exc):
                raise
            log.warning("cannot publish the forecasts now (%s); trying again in %.0f s", exc, every)
        await asyncio.sleep(every)
