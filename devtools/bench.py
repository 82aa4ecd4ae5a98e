"""`make bench`: how fast Suivi takes submissions and answers lookups, next to a bare FastAPI baseline.

What is measured, each for BENCH_SECONDS (default 10) after a short warm-up, with BENCH_CONCURRENCY
(default 32) keep-alive connections over loopback:

- submissions/s: `POST /v1/cases` on intake, with varied valid bodies; each must be answered 201.
  Intake validates the form, issues a tracking code and writes the case, its applicant and its first
  events (outbox) in one transaction; its relay publishes them to JetStream in the background.
- lookups/s: `GET /v1/track/{code}` on tracking, over codes submitted beforehand and already folded
  into tracking's read model; each must be answered 200.

Each is paired with a baseline (`devtools/bench_baseline.py`): a bare FastAPI app doing one INSERT of the
same JSON body, or one primary-key SELECT, on the same PostgreSQL, under the same uvicorn options
(one worker, no access log, log level warning) and the same load generator. Absolute requests per second
depend on the machine (its cores, and the load generator sharing them); the ratio Suivi ÷ baseline mostly
does not, so it is the number to compare across machines and over time: it says what Suivi's own work
costs on top of the least a FastAPI service on PostgreSQL can do.

The load generator is `wrk` when it is on PATH (Debian package `wrk`), with a generated Lua script that
picks among the pre-generated bodies or codes and counts unexpected statuses; otherwise a bounded asyncio +
HTTP/1.1 generator in this process (plain asyncio streams; it shares the CPUs with the servers, like wrk).
BENCH_GENERATOR=python forces the latter.

Afterwards the bench checks that every case intake accepted reached tracking (counting `intake.cases` and
`tracking.cases`, waiting up to 30 s). Everything runs on its own PostgreSQL and NATS in a temporary
directory, and every process started here is stopped on exit, Ctrl-C or error. Results are printed as a
table and written to bench-results/latest.json; the services' logs go to bench-results/logs/.

Then stats (`devtools/bench_stats.py`): its fold speed beside a raw consumer of the same events, and its
query times at 10k and at 1M events (BENCH_STATS_SMALL_EVENTS, BENCH_STATS_LARGE_EVENTS).
`python -m devtools.bench --only stats` runs that part alone (bench-results/stats.json).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, Protocol

import asyncpg
import httpx

from devtools.bench_stats import RATIO_TARGET, REPETITIONS, WARM_UP, Built, StatsBench, run_stats_bench
from devtools.servers import NatsServer, PostgresServer, UvicornProcess
from tests.builders import make_case

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench-results"
PRE_SUBMITTED = 200  # cases (and baseline rows) created before the bench, to look up
BODY_VARIANTS = 500
FOLD_PATIENCE_SECONDS = 30.0
UNLIMITED = "1000000/minute"
UVICORN_OPTIONS = ("--workers", "1", "--no-access-log", "--log-level", "warning")


# --- configuration --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    seconds: float
    warmup_seconds: float
    concurrency: int
    generator: str  # "wrk" or "python"

    @classmethod
    def from_env(cls) -> Config:
        seconds = float(os.environ.get("BENCH_SECONDS", "10"))
        wanted = os.environ.get("BENCH_GENERATOR", "wrk" if shutil.which("wrk") else "python")
        return cls(
            seconds=seconds,
            warmup_seconds=min(2.0, max(1.0, seconds / 5)),
            concurrency=int(os.environ.get("BENCH_CONCURRENCY", "32")),
            generator=wanted,
        )


# --- what one measurement sends, and what it found ------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Requests spread at random over `paths` (and `bodies`, when there are some: POST)."""

    name: str
    base_url: str
    method: str
    paths: list[str]
    expected_status: int
    bodies: list[str] = field(default_factory=list)


@dataclass
class Result:
    requests: int
    seconds: float
    unexpected_status: int  # answered, but not with the expected status
    socket_errors: int  # connect, read, write errors and timeouts
    p50_ms: float | None
    p99_ms: float | None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.unexpected_status + self.socket_errors

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "rps": round(self.rps, 1), "errors": self.errors}


class LoadGenerator(Protocol):
    name: str

    def run(self, target: Target, *, seconds: float, concurrency: int) -> Result: ...


# --- wrk -----------------------------------------------------------------------------------------------

_WRK_SCRIPT = """-- generated by devtools/bench.py
local method, expected = "{method}", {expected}
local paths = {{ {paths} }}
local bodies = {{ {bodies} }}
local headers = {{ {headers} }}
local threads = {{}}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_no", #threads)
end

function init(args)
  unexpected = 0
  math.randomseed(thread_no * 7919)
end

function request()
  local body = nil
  if #bodies > 0 then body = bodies[math.random(#bodies)] end
  return wrk.format(method, paths[math.random(#paths)], headers, body)
end

function response(status, hdrs, body)
  if status ~= expected then unexpected = unexpected + 1 end
end

function done(summary, latency, requests)
  local bad, e = 0, summary.errors
  for _, t in ipairs(threads) do bad = bad + t:get("unexpected") end
  io.write(string.format(
    'BENCH_RESULT {{"requests": %d, "duration_us": %d, "unexpected": %d, "socket_errors": %d, '
    .. '"p50_us": %d, "p99_us": %d}}\\n',
    summary.requests, summary.duration, bad, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def _lua_strings(values: list[str]) -> str:
    for value in values:
        assert "]==]" not in value, "cannot quote this as a Lua long string"
    return ", ".join(f"[==[{value}]==]" for value in values)


class Wrk:
    def __init__(self, *, workdir: Path, threads: int = 2) -> None:
        self.binary = shutil.which("wrk") or "wrk"
        self.workdir, self.threads = workdir, threads
        version = subprocess.run([self.binary, "-v"], capture_output=True, text=True, check=False).stdout
        self.name = (version.splitlines() or ["wrk"])[0].split(" [")[0]

    def _script(self, target: Target) -> Path:
        headers = '["Content-Type"] = "application/json"' if target.bodies else ""
        path = self.workdir / f"{target.name}.lua"
        path.write_text(
            _WRK_SCRIPT.format(
                method=target.method,
                expected=target.expected_status,
                paths=_lua_strings(target.paths),
                bodies=_lua_strings(target.bodies),
                headers=headers,
            ),
            encoding="utf-8",
        )
        return path

    def run(self, target: Target, *, seconds: float, concurrency: int) -> Result:
        threads, duration = min(self.threads, concurrency), max(1, round(seconds))
        options = [f"-t{threads}", f"-c{concurrency}", f"-d{duration}s", "--timeout", "10s"]
        command = [self.binary, *options, "-s", str(self._script(target)), target.base_url]
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=seconds + 60)
        lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH_RESULT ")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
        found = json.loads(lines[-1].removeprefix("BENCH_RESULT "))
        return Result(
            requests=found["requests"],
            seconds=found["duration_us"] / 1e6,
            unexpected_status=found["unexpected"],
            socket_errors=found["socket_errors"],
            p50_ms=found["p50_us"] / 1000,
            p99_ms=found["p99_us"] / 1000,
        )


# --- the fallback: asyncio -----------------------------------------------------------------------------


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    unexpected: int = 0
    socket_errors: int = 0


class PythonLoad:
    """`concurrency` keep-alive connections, each sending requests back to back until the deadline.

    Plain asyncio streams speaking HTTP/1.1, not httpx: httpx's connection pool tops out near 200 req/s
    here, below what the services answer, so it would measure the client rather than the server.
    """

    name = "python asyncio"

    def run(self, target: Target, *, seconds: float, concurrency: int) -> Result:
        return asyncio.run(self._run(target, seconds=seconds, concurrency=concurrency))

    async def _run(self, target: Target, *, seconds: float, concurrency: int) -> Result:
        url = httpx.URL(target.base_url)
        address = (url.host, url.port or 80)
        requests = _encoded_requests(target, host=f"{url.host}:{url.port}")
        tally = _Tally()
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(
            *(
                _connection(address, requests, target.expected_status, tally, deadline, random.Random(n))
                for n in range(concurrency)
            )
        )
        elapsed = time.perf_counter() - started
        p50, p99 = _percentiles(tally.latencies)
        return Result(
            requests=len(tally.latencies),
            seconds=elapsed,
            unexpected_status=tally.unexpected,
            socket_errors=tally.socket_errors,
            p50_ms=p50,
            p99_ms=p99,
        )


def _encoded_requests(target: Target, *, host: str) -> list[bytes]:
    """Every request the target may send, ready to write (one per path and body)."""
    encoded = []
    for path in target.paths:
        for body in target.bodies or [""]:
            content = body.encode()
            head = f"{target.method} {path} HTTP/1.1\r\nHost: {host}\r\n"
            if content:
                head += f"Content-Type: application/json\r\nContent-Length: {len(content)}\r\n"
            encoded.append(f"{head}\r\n".encode() + content)
    return encoded


async def _connection(
    address: tuple[str, int],
    requests: list[bytes],
    expected: int,
    tally: _Tally,
    deadline: float,
    rng: random.Random,
) -> None:
    writer: asyncio.StreamWriter | None = None
    while time.perf_counter() < deadline:
        try:
            async with asyncio.timeout(10):
                if writer is None:
                    reader, writer = await asyncio.open_connection(*address)
                sent = time.perf_counter()
                writer.write(rng.choice(requests))
                status = await _read_response(reader)
        except (OSError, EOFError, asyncio.LimitOverrunError, ValueError):  # TimeoutError is an OSError
            tally.socket_errors += 1
            if writer is not None:
                writer.close()
            writer = None
            continue
        tally.latencies.append(time.perf_counter() - sent)
        if status != expected:
            tally.unexpected += 1
    if writer is not None:
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one response (uvicorn always sends Content-Length for these); return its status."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    lengths = [line.split(":", 1)[1] for line in head[1:] if line.lower().startswith("content-length:")]
    if not lengths:
        raise ValueError("a response without Content-Length")
    await reader.readexactly(int(lengths[0]))
    return int(head[0].split(" ", 2)[1])


def _percentiles(latencies: list[float]) -> tuple[float | None, float | None]:
    if len(latencies) < 2:
        return None, None
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


# --- processes ----------------------------------------------------------------------------------------


def Uvicorn(app: str, *, env: dict[str, str], log: Path) -> UvicornProcess:
    """A service or the baseline, run the same way: one worker, no access log, warnings only."""
    return UvicornProcess(app, env=env, log=log, options=UVICORN_OPTIONS)


@dataclass(frozen=True)
class Stack:
    env: dict[str, str]
    database_url: str
    intake: UvicornProcess
    tracking: UvicornProcess
    baseline: UvicornProcess


def start_stack(stack: contextlib.ExitStack, workdir: Path, logs: Path) -> Stack:
    """PostgreSQL, NATS and the three apps; each is stopped when `stack` closes."""
    pg = PostgresServer(data=workdir / "pg")
    stack.callback(pg.stop)
    pg.start()
    nats = NatsServer(store=workdir / "nats")
    stack.callback(nats.stop)
    nats.start()
    database_url = pg.create_database("bench")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "NATS_URL": nats.url,
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
        "TRACKING_MISS_LIMIT": UNLIMITED,
        "TRACKING_LOOKUP_LIMIT": UNLIMITED,
    }
    apps = []
    for module, name in (
        ("services.intake.app", "intake"),
        ("services.tracking.app", "tracking"),
        ("devtools.bench_baseline", "baseline"),
    ):
        app = Uvicorn(module, env=env, log=logs / f"{name}.log")
        stack.callback(app.stop)
        apps.append(app.start())
    stack.callback(print, "stopping the services, NATS and PostgreSQL ...", flush=True)
    return Stack(env, database_url, *apps)


# --- data for the bench ---------------------------------------------------------------------------------

DISTRICTS = ("centre", "nord", "sud", "est", "ouest")
CHANNELS = ("web", "counter", "phone", "mail")
STREETS = ("rue des Lilas", "avenue Jean Jaurès", "place Bellecour", "quai Saint-Antoine", "cours Gambetta")


def submission_bodies(count: int, *, seed: int = 2024) -> list[str]:
    """Valid building-permit submissions, each a little different (lengths, values, applicant)."""
    rng = random.Random(seed)
    bodies = []
    for n in range(count):
        case = make_case(
            parcel_address=f"{rng.randint(1, 250)} {rng.choice(STREETS)}, 6900{rng.randint(1, 9)} Lyon",
            cadastral_reference=f"{rng.choice('ABCDEFGH')}{rng.choice('ABCDEFGH')} {rng.randint(1, 9999)}",
            district=rng.choice(DISTRICTS),
            floor_area_m2=rng.randint(20, 400),
            project_description="Maison individuelle avec garage et jardin. " * rng.randint(1, 30),
            applicant={"name": f"Camille Martin {n}", "email": f"camille.martin.{n}@example.org"},
            channel=rng.choice(CHANNELS),
        )
        bodies.append(json.dumps(case, ensure_ascii=False))
    return bodies


def post_each(url: str, bodies: list[str], key: str) -> list[Any]:
    """POST each body once (expecting 201) and return `key` of each answer."""
    found = []
    with httpx.Client(timeout=30, headers={"Content-Type": "application/json"}) as client:
        for body in bodies:
            response = client.post(url, content=body)
            if response.status_code != 201:
                raise RuntimeError(f"POST {url} answered {response.status_code}: {response.text[:500]}")
            found.append(response.json()[key])
    return found


@dataclass
class Convergence:
    submitted: int  # rows in intake.cases
    visible: int  # rows in tracking.cases
    seconds: float  # waited until they matched (or gave up)

    @property
    def complete(self) -> bool:
        return self.visible == self.submitted


async def _count_cases(database_url: str) -> tuple[int, int]:
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM intake.cases) AS intake, "
            "(SELECT count(*) FROM tracking.cases) AS tracking"
        )
        return int(row["intake"]), int(row["tracking"])
    finally:
        await conn.close()


def wait_for_tracking(database_url: str, *, patience: float = FOLD_PATIENCE_SECONDS) -> Convergence:
    """Wait until tracking has folded every case intake holds (or `patience` runs out)."""
    started = time.monotonic()
    while True:
        submitted, visible = asyncio.run(_count_cases(database_url))
        waited = time.monotonic() - started
        if visible >= submitted or waited > patience:
            return Convergence(submitted=submitted, visible=visible, seconds=waited)
        time.sleep(0.1)


# --- measuring ------------------------------------------------------------------------------------------


@dataclass
class Pair:
    measure: str
    suivi: Result
    baseline: Result

    @property
    def ratio(self) -> float:
        return self.suivi.rps / self.baseline.rps if self.baseline.rps else 0.0


def measure(generator: LoadGenerator, config: Config, target: Target) -> Result:
    print(f"  {target.name}: warm-up {config.warmup_seconds:g} s, then {config.seconds:g} s ...", flush=True)
    generator.run(target, seconds=config.warmup_seconds, concurrency=config.concurrency)
    return generator.run(target, seconds=config.seconds, concurrency=config.concurrency)


def measure_pair(
    generator: LoadGenerator, config: Config, name: str, suivi: Target, baseline: Target
) -> Pair:
    return Pair(name, measure(generator, config, suivi), measure(generator, config, baseline))


def make_generator(config: Config, workdir: Path) -> LoadGenerator:
    if config.generator == "wrk":
        return Wrk(workdir=workdir)
    return PythonLoad()


# --- reporting ------------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table(pairs: list[Pair]) -> str:
    lines = [
        "| measure | Suivi req/s | baseline req/s | ratio | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for p in pairs:
        lines.append(
            f"| {p.measure} | {p.suivi.rps:.0f} | {p.baseline.rps:.0f} | {p.ratio:.2f} "
            f"| {_ms(p.suivi.p50_ms)} / {_ms(p.baseline.p50_ms)} "
            f"| {_ms(p.suivi.p99_ms)} / {_ms(p.baseline.p99_ms)} "
            f"| {p.suivi.errors} / {p.baseline.errors} |"
        )
    return "\n".join(lines)


def convergence_line(c: Convergence) -> str:
    if c.complete:
        return f"all {c.submitted} submitted cases visible on tracking ({c.seconds:.1f} s after the load)"
    return f"ONLY {c.visible} of {c.submitted} submitted cases visible on tracking after {c.seconds:.0f} s"


def _history(b: Built) -> str:
    return f"{b.label} = {b.events:,} CaseImported events ({b.timeline_entries:,} timeline entries)"


def _reads(b: Built) -> str:
    return f"{b.label}: " + ", ".join(f"{n:,} {what}" for what, n in b.reads.items())


def stats_lines(r: StatsBench) -> list[str]:
    f, q = r.fold, r.queries
    small, large = q.small, q.large
    lines = [
        f"stats folds {f.fold_events_per_s:.0f} events/s, a raw pull-consume-and-ack "
        f"{f.raw_events_per_s:.0f} (ratio {f.ratio:.2f}, {f.events} events)",
        "",
        f"| stats query | {small.label} events p50 / p90 ms | {large.label} events p50 / p90 ms | ratio |",
        "|---|---:|---:|---:|",
    ]
    for t in q.timings:
        over = f" (over {RATIO_TARGET:g})" if t.ratio > RATIO_TARGET else ""
        lines.append(
            f"| {t.query} `{t.path}` | {t.small.p50_ms:.1f} / {t.small.p90_ms:.1f} "
            f"| {t.large.p50_ms:.1f} / {t.large.p90_ms:.1f} | {t.ratio:.2f}{over} |"
        )
    return [
        *lines,
        "",
        f"ratio = {large.label} ÷ {small.label} median (target ≤ {RATIO_TARGET:g}); "
        f"{REPETITIONS} requests per query and size, warm ({WARM_UP} first), alternating sizes; {q.client}",
        f"histories: devtools/history.py over the same 18 months, as intake's import turns them into events "
        f"(one per past case, its whole timeline): {_history(small)}, {_history(large)}",
        f"folded by stats' own handlers in bulk (BulkFold: their writes added up, then copied) in "
        f"{small.seconds:g} s and {large.seconds:g} s; checked: {q.checked}, which folds "
        f"{small.each_events_per_s or 0:.0f} events/s",
        f"rows the JSON series reads: {_reads(small)}; {_reads(large)}",
        f"stats' part of the bench took {r.seconds:.0f} s "
        f"({q.seconds:.0f} s to build both read models and time the queries)",
    ]


def _machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def _write(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def write_json(
    path: Path,
    config: Config,
    generator: LoadGenerator,
    pairs: list[Pair],
    c: Convergence,
    stats: StatsBench,
) -> None:
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "generator": generator.name,
        "seconds": config.seconds,
        "warmup_seconds": config.warmup_seconds,
        "concurrency": config.concurrency,
        "measures": [
            {
                "measure": p.measure,
                "ratio": round(p.ratio, 3),
                "suivi": p.suivi.as_json(),
                "baseline": p.baseline.as_json(),
            }
            for p in pairs
        ],
        "convergence": {**asdict(c), "complete": c.complete},
        "stats": stats.as_json(),
    }
    _write(path, report)


# --- main -----------------------------------------------------------------------------------------------


def _started(stack: contextlib.ExitStack, workdir: Path) -> tuple[Stack, Path]:
    logs = RESULTS_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    print(f"starting PostgreSQL, NATS, intake, tracking and the baseline (logs in {logs}) ...", flush=True)
    return start_stack(stack, workdir, logs), logs


def run_stats(s: Stack, stack: contextlib.ExitStack, workdir: Path, logs: Path) -> StatsBench:
    return run_stats_bench(
        stack,
        env=s.env,
        logs=logs,
        workdir=workdir,
        options=UVICORN_OPTIONS,
        scale=float(os.environ.get("BENCH_STATS_SCALE", "0.5")),
    )


def run(
    config: Config, workdir: Path, stack: contextlib.ExitStack
) -> tuple[LoadGenerator, list[Pair], Convergence, StatsBench]:
    s, logs = _started(stack, workdir)
    generator = make_generator(config, workdir)
    bodies = submission_bodies(BODY_VARIANTS)
    print(
        f"submitting {PRE_SUBMITTED} cases to look up, and waiting for tracking to fold them ...", flush=True
    )
    codes = post_each(f"{s.intake.url}/v1/cases", bodies[:PRE_SUBMITTED], "tracking_code")
    ids = post_each(f"{s.baseline.url}/insert", bodies[:PRE_SUBMITTED], "id")
    if not wait_for_tracking(s.database_url).complete:
        raise RuntimeError("tracking did not fold the pre-submitted cases")
    print(f"measuring with {generator.name}, {config.concurrency} connections:", flush=True)
    submitted = measure(
        generator, config, Target("intake-submit", s.intake.url, "POST", ["/v1/cases"], 201, bodies)
    )
    convergence = wait_for_tracking(s.database_url)  # right away, so folding competes with nothing else
    inserted = measure(
        generator, config, Target("baseline-insert", s.baseline.url, "POST", ["/insert"], 201, bodies)
    )
    submissions = Pair("submissions (POST /v1/cases vs one INSERT)", submitted, inserted)
    lookups = measure_pair(
        generator,
        config,
        "lookups (GET /v1/track/{code} vs one SELECT)",
        Target("tracking-lookup", s.tracking.url, "GET", [f"/v1/track/{code}" for code in codes], 200),
        Target("baseline-select", s.baseline.url, "GET", [f"/row/{row_id}" for row_id in ids], 200),
    )
    return generator, [submissions, lookups], convergence, run_stats(s, stack, workdir, logs)


def _exit_on_sigterm(signum: int, frame: object) -> NoReturn:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="suivi-bench-") as tmp:
        yield Path(tmp)


def main_stats() -> int:
    """`--only stats`: stats' part alone, on the same stack, written to bench-results/stats.json."""
    try:
        with _scratch() as workdir, contextlib.ExitStack() as stack:
            s, logs = _started(stack, workdir)
            stats = run_stats(s, stack, workdir, logs)
    except KeyboardInterrupt:
        print("\ninterrupted: every process the bench started is stopped", file=sys.stderr)
        return 130
    print()
    print("\n".join(stats_lines(stats)))
    out = RESULTS_DIR / "stats.json"
    _write(
        out,
        {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": _machine(),
            "stats": stats.as_json(),
        },
    )
    print(f"written to {out.relative_to(REPO_ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only", choices=["stats"], help="run one part alone (stats: its fold speed and query times)"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if args.only == "stats":
        return main_stats()
    config = Config.from_env()
    try:
        with _scratch() as workdir, contextlib.ExitStack() as stack:
            generator, pairs, convergence, stats = run(config, workdir, stack)
    except KeyboardInterrupt:
        print("\ninterrupted: every process the bench started is stopped", file=sys.stderr)
        return 130
    print()
    print(table(pairs))
    print(
        f"\nratio = Suivi ÷ baseline req/s; p50, p99 and errors: Suivi / baseline; {generator.name}, "
        f"{config.concurrency} connections, {config.seconds:g} s per measure, {os.cpu_count()} CPUs"
    )
    print(convergence_line(convergence))
    print("\n".join(stats_lines(stats)))
    out = RESULTS_DIR / "latest.json"
    write_json(out, config, generator, pairs, convergence, stats)
    print(f"written to {out.relative_to(REPO_ROOT)}")
    failed = any(p.suivi.errors or p.baseline.errors for p in pairs) or not convergence.complete
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
