"""How soon a submission is visible in tracking, at a steady rate of submissions (issue 12: 200/s).

Open loop: a submission is started every 1/rate seconds whatever the earlier ones are doing (a citizen
does not wait for another one), over keep-alive connections, for `seconds`. Each one's clock starts when
intake answers 201 (the citizen holds the tracking code from then on) and stops when tracking's read
model holds the case: a watcher asks PostgreSQL every 2 ms which of the answered codes `tracking.cases`
has (one query for all of them), so the figure is what a lookup would see, without the lookups' own load.
The watcher's period bounds the error (a few ms, reported).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from dataclasses import dataclass

import asyncpg
import httpx

from devtools.bench_report import Figure
from shared import tracking_code

WATCH_EVERY_SECONDS = 0.002
P50_TARGET_MS, P99_TARGET_MS = 50.0, 250.0


@dataclass
class Visibility:
    rate: float  # submissions per second asked for
    achieved_rate: float  # answered per second
    submitted: int
    not_answered: int  # not 201 (or no answer)
    never_visible: int  # answered, but not in tracking within the patience
    latencies_ms: list[float]

    def percentile(self, q: int) -> float:
        if len(self.latencies_ms) < 2:
            return float("inf")
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[q - 1]


async def _watch(
    database_url: str, answered: dict[str, float], seen: dict[str, float], done: asyncio.Event
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        while not (done.is_set() and len(seen) >= len(answered)):
            waiting = [d for d in answered if d not in seen]
            if waiting:
                rows = await conn.fetch(
                    "SELECT tracking_code_digest FROM tracking.cases WHERE tracking_code_digest = ANY($1)",
                    waiting,
                )
                now = time.perf_counter()
                for row in rows:
                    seen[row["tracking_code_digest"]] = now
            await asyncio.sleep(WATCH_EVERY_SECONDS)
    finally:
        await conn.close()


async def _measure(
    intake_url: str, database_url: str, bodies: list[str], *, rate: float, seconds: float, patience: float
) -> Visibility:
    answered: dict[str, float] = {}  # digest -> when intake answered
    seen: dict[str, float] = {}  # digest -> when tracking had it
    failures = 0
    done = asyncio.Event()
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(
        base_url=intake_url, timeout=30, limits=limits, headers={"Content-Type": "application/json"}
    ) as client:

        async def submit(body: str) -> None:
            nonlocal failures
            try:
                response = await client.post("/v1/cases", content=body)
            except httpx.HTTPError:
                failures += 1
                return
            if response.status_code != 201:
                failures += 1
                return
            answered[tracking_code.digest(response.json()["tracking_code"])] = time.perf_counter()

        watcher = asyncio.create_task(_watch(database_url, answered, seen, done))
        tasks = []
        started = time.perf_counter()
        count = int(rate * seconds)
        for n in range(count):
            pause = started + n / rate - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
            tasks.append(asyncio.create_task(submit(bodies[n % len(bodies)])))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
        done.set()
        with contextlib.suppress(TimeoutError):  # what is not seen by then is counted as never visible
            await asyncio.wait_for(watcher, timeout=patience)
    latencies = [(seen[d] - at) * 1000 for d, at in answered.items() if d in seen]
    return Visibility(
        rate=rate,
        achieved_rate=len(answered) / elapsed,
        submitted=count,
        not_answered=failures,
        never_visible=len(answered) - len(latencies),
        latencies_ms=latencies,
    )


def measure_visibility(
    intake_url: str, database_url: str, bodies: list[str], *, rate: float = 200, seconds: float = 10
) -> Figure:
    v = asyncio.run(_measure(intake_url, database_url, bodies, rate=rate, seconds=seconds, patience=30))
    p50, p99 = v.percentile(50), v.percentile(99)
    return Figure(
        path="submission visible in tracking",
        measured_as=f"latency p50 / p99 from intake's 201 to tracking's read model, at a steady {rate:g} "
        f"submissions/s for {seconds:g} s",
        unit="ms",
        value=round(p50, 1),
        baseline=None,
        shown=f"{p50:.1f} / {p99:.1f} ms",
        target=f"p50 ≤ {P50_TARGET_MS:g} ms, p99 ≤ {P99_TARGET_MS:g} ms",
        passed=p50 <= P50_TARGET_MS
        and p99 <= P99_TARGET_MS
        and not v.not_answered
        and not v.never_visible
        and v.achieved_rate >= 0.95 * rate,
        details={
            "p50_ms": round(p50, 1),
            "p99_ms": round(p99, 1),
            "max_ms": round(max(v.latencies_ms, default=0), 1),
            "rate_asked": rate,
            "rate_answered": round(v.achieved_rate, 1),
            "submitted": v.submitted,
            "not_answered": v.not_answered,
            "never_visible": v.never_visible,
            "watch_every_ms": WATCH_EVERY_SECONDS * 1000,
        },
    )
