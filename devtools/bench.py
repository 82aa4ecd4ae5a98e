"""`make bench`: issue 12's table in one run. Every figure is Suivi beside a baseline measured in the same
run on the same machine (the ratio is the number to compare across machines), or a latency target.

| figure | Suivi | baseline |
|---|---|---|
| tracking lookup, warm | `GET /v1/track/{code}` | a bare FastAPI endpoint: one asyncpg primary-key SELECT |
| intake submission | `POST /v1/cases` (validation, tracking code, case, events, outbox) | bare endpoint: one INSERT |
| workflow action | `POST /v1/cases/{id}/actions` (load, rights, version check, append) | the same bare INSERT |
| visibility | a submission's 201 until tracking's read model has it, at 200/s | (latency target) |
| relay | `OutboxRelay` publishing the outbox to JetStream | raw nats-py `publish_async`, same payloads |
| projection fold | tracking and stats folding the stream from scratch | raw nats-py pull-consume-and-ack |
| stats query | each query at 1M events | the same at 10k events |
| event store | `shared.eventstore.append` + `shared.projection.fold` | the `eventsourcing` library, same work |

HTTP figures: BENCH_SECONDS (default 10) after a warm-up, BENCH_CONCURRENCY (default 64) keep-alive
connections over loopback, each app under the same uvicorn options (one worker, no access log, warnings
only). The load generator is `wrk` when it is on PATH (Debian package `wrk`), else a bounded asyncio
generator in this process (`devtools/bench_load.py`); BENCH_GENERATOR=python forces it. The output says
which ran. Everything runs on its own PostgreSQL and NATS in a temporary directory, and every process
started here is stopped on exit, Ctrl-C or error.

Results: a table on stdout, bench-results/latest.json and latest.md (and a copy named by the time of the
run); the services' logs in bench-results/logs/. The exit status is 0 when every target is met, 1 when one
is missed, 2 when a measure failed (errors, a case not folded). `--only NAME` runs one part
(http, relay, fold, stats, eventstore).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import asyncpg
import httpx

from devtools import dev_issuer
from devtools.bench_load import LoadGenerator, PythonLoad, Result, Target, Wrk
from devtools.bench_report import Figure, markdown, write
from devtools.bench_stats import RATIO_TARGET as STATS_RATIO_TARGET
from devtools.bench_stats import measure_queries, sizes_from_env
from devtools.bench_visibility import measure_visibility
from devtools.servers import NatsServer, PostgresServer, UvicornProcess
from tests.builders import make_case

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench-results"
PRE_SUBMITTED = 200  # cases (and baseline rows) created before the bench, to look up
ACTION_CASES = 1000  # cases opened in workflow before the bench, to act on in turn
BODY_VARIANTS = 500
FOLD_PATIENCE_SECONDS = 60.0
UNLIMITED = "1000000/minute"
UVICORN_OPTIONS = ("--workers", "1", "--no-access-log", "--log-level", "warning")
ACTION_BODY = '{"action": "assign", "expected_version": %d, "assignee": "agent-bench"}'
LOOKUP_RATIO, LOOKUP_P99_MS, SUBMISSION_RATIO, ACTION_RATIO = 0.8, 50.0, 0.5, 0.4


# --- configuration --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    seconds: float
    warmup_seconds: float
    concurrency: int
    generator: str  # "wrk" or "python"

    @classmethod
    def from_env(cls) -> Config:
        import shutil

        seconds = float(os.environ.get("BENCH_SECONDS", "10"))
        return cls(
            seconds=seconds,
            warmup_seconds=min(2.0, max(1.0, seconds / 5)),
            concurrency=int(os.environ.get("BENCH_CONCURRENCY", "64")),
            generator=os.environ.get("BENCH_GENERATOR", "wrk" if shutil.which("wrk") else "python"),
        )


def make_generator(config: Config, workdir: Path) -> LoadGenerator:
    return Wrk(workdir=workdir) if config.generator == "wrk" else PythonLoad()


# --- processes ----------------------------------------------------------------------------------------


def Uvicorn(app: str, *, env: dict[str, str], log: Path) -> UvicornProcess:
    """A service or the baseline, run the same way: one worker, no access log, warnings only."""
    return UvicornProcess(app, env=env, log=log, options=UVICORN_OPTIONS)


@dataclass(frozen=True)
class Servers:
    pg: PostgresServer
    workdir: Path
    logs: Path

    def nats(self, stack: contextlib.ExitStack, name: str) -> NatsServer:
        """A NATS of its own for one part of the bench: no part's stream weighs on another's."""
        server = NatsServer(store=self.workdir / f"nats-{name}")
        stack.callback(server.stop)
        return server.start()

    def database(self, name: str) -> str:
        return self.pg.create_database(name)


def start_servers(stack: contextlib.ExitStack, workdir: Path) -> Servers:
    logs = RESULTS_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    pg = PostgresServer(data=workdir / "pg")
    stack.callback(pg.stop)
    pg.start()
    stack.callback(print, "stopping the services, NATS and PostgreSQL ...", flush=True)
    return Servers(pg, workdir, logs)


@dataclass(frozen=True)
class Stack:
    env: dict[str, str]
    database_url: str
    intake: UvicornProcess
    tracking: UvicornProcess
    workflow: UvicornProcess
    baseline: UvicornProcess
    issuer: Path


def start_stack(stack: contextlib.ExitStack, servers: Servers) -> Stack:
    """intake, tracking, workflow and the baseline on one database and one NATS."""
    nats = servers.nats(stack, "http")
    database_url = servers.database("bench")
    issuer = dev_issuer.ensure_keys(servers.workdir / "issuer")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "NATS_URL": nats.url,
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
        "TRACKING_MISS_LIMIT": UNLIMITED,
        "TRACKING_LOOKUP_LIMIT": UNLIMITED,
        "OIDC_JWKS_FILE": str(issuer),
        "OIDC_ISSUER": dev_issuer.DEV_ISSUER,
        "DOCUMENTS_DIR": str(servers.workdir / "documents"),
    }
    apps = []
    for module, name in (
        ("services.intake.app", "intake"),
        ("services.tracking.app", "tracking"),
        ("services.workflow.app", "workflow"),
        ("devtools.bench_baseline", "baseline"),
    ):
        app = Uvicorn(module, env=env, log=servers.logs / f"{name}.log")
        stack.callback(app.stop)
        apps.append(app.launch())
    for app in apps:
        app.wait_ready()
    intake, tracking, workflow, baseline = apps
    return Stack(env, database_url, intake, tracking, workflow, baseline, servers.workdir / "issuer")


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
    opened: int  # rows in workflow.cases
    seconds: float  # waited until they matched (or gave up)

    @property
    def complete(self) -> bool:
        return self.visible == self.submitted == self.opened

    def line(self) -> str:
        if self.complete:
            return f"all {self.submitted} submitted cases in tracking and workflow ({self.seconds:.1f} s after the load)"
        return (
            f"ONLY {self.visible} (tracking) and {self.opened} (workflow) of {self.submitted} submitted cases "
            f"folded after {self.seconds:.0f} s"
        )


async def _count_cases(database_url: str) -> tuple[int, int, int]:
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM intake.cases) AS intake, "
            "(SELECT count(*) FROM tracking.cases) AS tracking, (SELECT count(*) FROM workflow.cases) AS workflow"
        )
        return int(row["intake"]), int(row["tracking"]), int(row["workflow"])
    finally:
        await conn.close()


def wait_for_readers(database_url: str, *, patience: float = FOLD_PATIENCE_SECONDS) -> Convergence:
    """Wait until tracking and workflow have folded every case intake holds (or `patience` runs out)."""
    started = time.monotonic()
    while True:
        submitted, visible, opened = asyncio.run(_count_cases(database_url))
        waited = time.monotonic() - started
        if (visible >= submitted and opened >= submitted) or waited > patience:
            return Convergence(submitted=submitted, visible=visible, opened=opened, seconds=waited)
        time.sleep(0.1)


async def _versions(database_url: str) -> list[tuple[str, int]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT case_id, version FROM workflow.cases WHERE procedure = 'permis-construire'"
        )
        return [(str(r["case_id"]), int(r["version"])) for r in rows]
    finally:
        await conn.close()


# --- the HTTP figures -------------------------------------------------------------------------------------


def measure(generator: LoadGenerator, config: Config, target: Target) -> Result:
    print(f"  {target.name}: warm-up {config.warmup_seconds:g} s, then {config.seconds:g} s ...", flush=True)
    if not target.versions:  # a versioned target's warm-up would spend the versions the measure counts on
        generator.run(target, seconds=config.warmup_seconds, concurrency=config.concurrency)
    return generator.run(target, seconds=config.seconds, concurrency=config.concurrency)


def _details(suivi: Result, baseline: Result) -> dict[str, Any]:
    return {"suivi": suivi.as_json(), "baseline": baseline.as_json()}


def _clean(*results: Result, tolerated: float = 0.0) -> bool:
    """No errors (or no more than a `tolerated` share of the requests)."""
    return all(r.errors <= tolerated * r.requests for r in results)


def http_figures(config: Config, s: Stack, generator: LoadGenerator, notes: list[str]) -> list[Figure]:
    bodies = submission_bodies(BODY_VARIANTS)
    print(
        f"submitting {PRE_SUBMITTED + ACTION_CASES} cases to look up and act on, and waiting for tracking "
        "and workflow to fold them ...",
        flush=True,
    )
    codes = post_each(f"{s.intake.url}/v1/cases", bodies[:PRE_SUBMITTED], "tracking_code")
    post_each(f"{s.intake.url}/v1/cases", [bodies[n % len(bodies)] for n in range(ACTION_CASES)], "case_id")
    ids = post_each(f"{s.baseline.url}/insert", bodies[:PRE_SUBMITTED], "id")
    if not wait_for_readers(s.database_url).complete:
        raise RuntimeError("tracking or workflow did not fold the cases submitted before the bench")
    print(f"measuring with {generator.name}, {config.concurrency} connections:", flush=True)
    figures = []

    looked_up = measure(
        generator,
        config,
        Target("tracking-lookup", s.tracking.url, "GET", [f"/v1/track/{code}" for code in codes], 200),
    )
    selected = measure(
        generator, config, Target("baseline-select", s.baseline.url, "GET", [f"/row/{i}" for i in ids], 200)
    )
    ratio = looked_up.rps / selected.rps
    p99 = looked_up.p99_ms or float("inf")
    figures.append(
        Figure(
            path="tracking lookup by code, warm",
            measured_as=f"req/s at {config.concurrency} connections vs a bare FastAPI endpoint doing one "
            "asyncpg primary-key select",
            unit="req/s",
            value=round(looked_up.rps, 1),
            baseline=round(selected.rps, 1),
            shown=f"{looked_up.rps:,.0f} req/s, p99 {p99:.1f} ms",
            target=f"≥ {LOOKUP_RATIO:g}×, p99 ≤ {LOOKUP_P99_MS:g} ms",
            passed=ratio >= LOOKUP_RATIO and p99 <= LOOKUP_P99_MS and _clean(looked_up, selected),
            details=_details(looked_up, selected),
        )
    )

    submitted = measure(
        generator,
        config,
        Target("intake-submit", s.intake.url, "POST", ["/v1/cases"], 201, bodies, keyed="bench-submission"),
    )
    convergence = wait_for_readers(s.database_url)  # right away, so folding competes with nothing else
    notes.append(convergence.line())
    inserted = measure(
        generator, config, Target("baseline-insert", s.baseline.url, "POST", ["/insert"], 201, bodies)
    )
    figures.append(
        Figure(
            path="intake submission",
            measured_as="req/s, each with an Idempotency-Key of its own, vs a bare FastAPI endpoint doing one "
            "single-row insert of the same body",
            unit="req/s",
            value=round(submitted.rps, 1),
            baseline=round(inserted.rps, 1),
            target=f"≥ {SUBMISSION_RATIO:g}×",
            passed=submitted.rps / inserted.rps >= SUBMISSION_RATIO
            and _clean(submitted, inserted)
            and convergence.complete,
            details={**_details(submitted, inserted), "convergence": convergence.line()},
        )
    )

    cases = asyncio.run(_versions(s.database_url))
    token = dev_issuer.issue(s.issuer, role="supervisor", services=["urbanisme"], agent="agent-bench-lead")
    acted = measure(
        generator,
        config,
        Target(
            "workflow-action",
            s.workflow.url,
            "POST",
            [f"/v1/cases/{case_id}/actions" for case_id, _ in cases],
            200,
            bodies=[ACTION_BODY],
            versions=[version for _, version in cases],
            headers={"Authorization": f"Bearer {token}"},
        ),
    )
    action_inserted = measure(
        generator,
        config,
        Target("baseline-insert-action", s.baseline.url, "POST", ["/insert"], 201, [ACTION_BODY % 1]),
    )
    figures.append(
        Figure(
            path="workflow action",
            measured_as=f"req/s of `assign` with its expected version, round robin over {len(cases)} open "
            "cases, vs the same bare insert endpoint",
            unit="req/s",
            value=round(acted.rps, 1),
            baseline=round(action_inserted.rps, 1),
            target=f"≥ {ACTION_RATIO:g}×",
            # An action can meet a 409 now and then: workflow's own deadline checks move a case's version.
            passed=acted.rps / action_inserted.rps >= ACTION_RATIO
            and _clean(acted, action_inserted, tolerated=0.001),
            details=_details(acted, action_inserted),
        )
    )

    print("  visibility: 200 submissions/s for 10 s, each timed until tracking has it ...", flush=True)
    figures.append(measure_visibility(s.intake.url, s.database_url, bodies))
    return figures


# --- the other parts ----------------------------------------------------------------------------------------


def relay_figures(servers: Servers, stack: contextlib.ExitStack) -> list[Figure]:
    from devtools.bench_relay import measure_relay

    print("relay: the outbox to JetStream, beside raw publish_async ...", flush=True)
    nats = servers.nats(stack, "relay")
    return [measure_relay(database_url=servers.database("bench_relay"), nats_url=nats.url)]


def fold_figures(servers: Servers, stack: contextlib.ExitStack) -> list[Figure]:
    from devtools.bench_fold import measure_folds

    print("fold: tracking and stats folding the stream from scratch, beside a raw consumer ...", flush=True)
    nats = servers.nats(stack, "fold")
    env = {
        **os.environ,
        "DATABASE_URL": servers.database("bench_fold"),
        "NATS_URL": nats.url,
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
        "DOCUMENTS_DIR": str(servers.workdir / "documents-fold"),
    }
    return measure_folds(env=env, logs=servers.logs, options=UVICORN_OPTIONS, stack=stack)


def stats_figures(servers: Servers, stack: contextlib.ExitStack) -> list[Figure]:
    small, large = sizes_from_env()
    print(f"stats: query times at {small:,} and {large:,} events ...", flush=True)
    env = {**os.environ, "DATABASE_URL": servers.pg.url(), "ENVIRONMENT": "test", "LOG_LEVEL": "WARNING"}
    result = measure_queries(
        stack,
        env=env,
        logs=servers.logs,
        workdir=servers.workdir,
        options=UVICORN_OPTIONS,
        small_events=small,
        large_events=large,
    )
    timed = [t for t in result.timings if not t.path.endswith("/healthz")]
    worst = max(timed, key=lambda t: t.ratio)
    return [
        Figure(
            path="stats query",
            measured_as=f"median time at {result.large.events:,} events vs at {result.small.events:,}, "
            f"each of {len(timed)} queries (the worst shown)",
            unit="ms",
            value=worst.large.p50_ms,
            baseline=worst.small.p50_ms,
            ratio=worst.ratio,
            shown=f"{worst.query}: {worst.large.p50_ms:.1f} ms",
            target=f"≤ {STATS_RATIO_TARGET:g}×",
            passed=all(t.ratio <= STATS_RATIO_TARGET for t in timed),
            details=result.as_json(),
        )
    ]


def eventstore_figures(servers: Servers, stack: contextlib.ExitStack) -> list[Figure]:
    from devtools.bench_eventsourcing import measure_eventsourcing

    print("event store: append + projection, beside the eventsourcing library ...", flush=True)
    return [measure_eventsourcing(database_url=servers.database("bench_eventsourcing"))]


PARTS: dict[str, Callable[[Servers, contextlib.ExitStack], list[Figure]]] = {
    "relay": relay_figures,
    "fold": fold_figures,
    "stats": stats_figures,
    "eventstore": eventstore_figures,
}


# --- main -----------------------------------------------------------------------------------------------


def _exit_on_sigterm(signum: int, frame: object) -> NoReturn:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="suivi-bench-") as tmp:
        yield Path(tmp)


def run(config: Config, only: str | None, notes: list[str]) -> tuple[list[Figure], list[str]]:
    """Every part (or `only` one), each on its own database and NATS; a part that fails is reported and
    the others still run."""
    figures: list[Figure] = []
    failed: list[str] = []
    with _scratch() as workdir, contextlib.ExitStack() as stack:
        print("starting PostgreSQL ...", flush=True)
        servers = start_servers(stack, workdir)
        for name in ("http", *PARTS):
            if only not in (None, name):
                continue
            started = time.perf_counter()
            try:
                with contextlib.ExitStack() as part:
                    if name == "http":
                        generator = make_generator(config, workdir)
                        notes.append(
                            f"HTTP load: {generator.name}, {config.concurrency} connections, {config.seconds:g} s "
                            f"per measure after {config.warmup_seconds:g} s of warm-up; every app one uvicorn "
                            f"worker ({' '.join(UVICORN_OPTIONS)})"
                        )
                        print("starting NATS, intake, tracking, workflow and the baseline ...", flush=True)
                        figures += http_figures(config, start_stack(part, servers), generator, notes)
                    else:
                        figures += PARTS[name](servers, part)
            except Exception as exc:
                traceback.print_exc()
                failed.append(f"{name}: {exc}")
            notes.append(f"part {name} took {time.perf_counter() - started:.0f} s")
    return figures, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["http", *PARTS], help="run one part alone")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    config = Config.from_env()
    notes: list[str] = []
    started = time.perf_counter()
    try:
        figures, failed = run(config, args.only, notes)
    except KeyboardInterrupt:
        print("\ninterrupted: every process the bench started is stopped", file=sys.stderr)
        return 130
    notes.append(f"the whole bench took {time.perf_counter() - started:.0f} s on {os.cpu_count()} CPUs")
    notes += [f"FAILED to measure {what}" for what in failed]
    print()
    print(markdown(figures))
    print()
    print("\n".join(notes))
    out = write(
        RESULTS_DIR,
        figures,
        context={"generator": config.generator, "seconds": config.seconds, "concurrency": config.concurrency},
        notes=notes,
    )
    print(f"written to {out.relative_to(REPO_ROOT)} and latest.json")
    if failed:
        return 2
    return 0 if all(f.passed for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
