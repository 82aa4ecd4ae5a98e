"""The one check every fault test ends with: what the load generator was told is exactly what the system
shows, once it has settled.

- every acknowledged submission is one case, and nothing else is: in intake, workflow, tracking, stats and
  notify, and each of its events once on the bus;
- every acknowledged action is in workflow once (its version), and tracking's public lookup by the case's
  code shows the case at the step and version of its last acknowledged action;
- stats counts each case once: its cases table, its counts per district, and the figures of its API
  (submitted, decided);
- notify noted one `received` per case and one `decided` per decided case, and sent each message once,
  but for a message in flight when its sender was cut off (`Resends`: SMTP shares no transaction with
  notify, so the mail server may have taken it in the instant before notify could record it; it is sent
  again with the same Message-ID, and notify counted the second try);
- no dead letter anywhere; the load generator got no answer but 2xx, 503 or none at all, and a 503 was
  never a request that had been done after all.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import nats

from services.stats import domain as stats_domain
from shared.bus import servers_of
from shared.events import STREAM
from shared.procedures import CITY_TIMEZONE
from tests.faults.load import Case, Ledger
from tests.faults.system import SERVICES, System

PROCEDURE = "permis-construire"
SETTLE_SECONDS = 120
# intake folds workflow's step changes (ratings, fix checks need them): version 3 is a case's first.
INTAKE_STEPS = (
    "SELECT count(*) FROM unnest($1::uuid[], $2::int[]) AS e(case_id, v) "
    "LEFT JOIN intake.steps s USING (case_id) WHERE e.v < 3 AND s.case_id IS NULL OR s.version = e.v"
)


@dataclass
class Resends:
    """Which messages may have gone out twice: those notify had marked `sending` when it was killed
    (`in_flight`), and, for a cut the test could not observe (PostgreSQL gone: notify cannot record a
    mail the server took), up to `unobserved` more; each of them a message notify tried more than once."""

    in_flight: set[str] = field(default_factory=set)
    unobserved: int = 0


@dataclass
class Settled:
    seconds: float
    mails: int
    resent: list[str]


async def assert_nothing_lost_or_doubled(
    system: System, ledger: Ledger, *, since: datetime, resends: Resends | None = None
) -> Settled:
    """Wait until the system has settled on what `ledger` holds, then check it all; `since`: when the load
    began (for stats' months)."""
    resends = resends or Resends()
    cases = list(ledger.cases.values())
    problems = _load_problems(ledger)
    conn = await asyncpg.connect(system.database_url)
    try:
        seconds = await _settle(conn, cases)
        problems += await _writers(conn, cases)
        problems += await _bus(conn, system.nats_url)
        problems += await _tracking(conn, system.url("tracking"), cases)
        problems += await _stats(conn, system.url("stats"), cases, since=since)
        notified, resent, mails = await _notify(conn, system, cases, resends)
        problems += notified
        problems += await _dead_letters(conn)
    finally:
        await conn.close()
    assert not problems, "\n".join(problems)
    return Settled(seconds=seconds, mails=mails, resent=resent)


def _load_problems(ledger: Ledger) -> list[str]:
    tally, problems = ledger.tally, []
    problems += [f"unexpected answer to the load: {u}" for u in tally.unexpected]
    problems += [f"never answered, however often asked: {g}" for g in tally.gave_up]
    problems += [f"answered 503 or refused, done after all: {r}" for r in tally.replayed_after_unavailable]
    if not ledger.cases:
        problems.append("no case acknowledged at all")
    return problems


def _expected(cases: list[Case]) -> tuple[list[str], list[int], list[str]]:
    return [c.case_id for c in cases], [c.version for c in cases], [c.step for c in cases]


async def _settle(conn: asyncpg.Connection, cases: list[Case]) -> float:
    """Until every reader shows every case at its last version and every message is sent (or time is up:
    the checks then say what is missing). Returns how long it took."""
    ids, versions, _ = _expected(cases)
    messages = len(cases) + sum(c.decided for c in cases)
    checks = [
        "SELECT count(*) FROM unnest($1::uuid[], $2::int[]) AS e(case_id, v) "
        "JOIN tracking.cases t USING (case_id) WHERE t.workflow_version = e.v",
        "SELECT count(*) FROM unnest($1::uuid[], $2::int[]) AS e(case_id, v) "
        "JOIN stats.cases s USING (case_id) WHERE s.workflow_version = e.v",
        INTAKE_STEPS,
    ]
    began = time.monotonic()
    while time.monotonic() - began < SETTLE_SECONDS:
        folded = [await conn.fetchval(sql, ids, versions) for sql in checks]
        sent = await conn.fetchval("SELECT count(*) FROM notify.messages WHERE status = 'sent'")
        if all(n == len(cases) for n in folded) and sent >= messages:
            break
        await asyncio.sleep(0.2)
    return time.monotonic() - began


async def _ids(conn: asyncpg.Connection, sql: str) -> Counter[str]:
    return Counter(str(r[0]) for r in await conn.fetch(sql))


def _same_cases(where: str, found: Counter[str], cases: list[Case]) -> list[str]:
    expected = {c.case_id for c in cases}
    problems = []
    if missing := expected - set(found):
        problems.append(f"{where}: {len(missing)} acknowledged case(s) missing, e.g. {sorted(missing)[:3]}")
    if extra := set(found) - expected:
        problems.append(f"{where}: {len(extra)} case(s) nobody was told of, e.g. {sorted(extra)[:3]}")
    if doubled := [i for i, n in found.items() if n > 1]:
        problems.append(f"{where}: {len(doubled)} case(s) more than once, e.g. {doubled[:3]}")
    return problems


async def _writers(conn: asyncpg.Connection, cases: list[Case]) -> list[str]:
    """intake holds each acknowledged case once; workflow each, at the version of its last action, with
    one event per version; both outboxes are published."""
    problems = _same_cases("intake", await _ids(conn, "SELECT case_id FROM intake.cases"), cases)
    submitted = "SELECT case_id FROM intake.events WHERE type = 'fr.suivi.case.submitted.v1'"
    problems += _same_cases("intake's CaseSubmitted events", await _ids(conn, submitted), cases)
    problems += _same_cases("workflow", await _ids(conn, "SELECT case_id FROM workflow.cases"), cases)
    rows = await conn.fetch(
        "SELECT c.case_id::text, c.version, c.step, count(e.*) AS events FROM workflow.cases c "
        "LEFT JOIN workflow.events e USING (case_id) GROUP BY c.case_id, c.version, c.step"
    )
    seen = {r["case_id"]: r for r in rows}
    wrong = [
        f"{c.case_id}: version {seen[c.case_id]['version']}/{c.version}, step {seen[c.case_id]['step']}/"
        f"{c.step}, {seen[c.case_id]['events']} events"
        for c in cases
        if c.case_id in seen
        and (seen[c.case_id]["version"], seen[c.case_id]["step"], seen[c.case_id]["events"])
        != (c.version, c.step, c.version)
    ]
    if wrong:
        problems.append(
            f"workflow differs from the acknowledged actions for {len(wrong)} case(s): {wrong[:3]}"
        )
    ids, versions, _ = _expected(cases)
    if (steps := await conn.fetchval(INTAKE_STEPS, ids, versions)) != len(cases):
        problems.append(f"intake folded the last step change of {steps} case(s) of {len(cases)}")
    for schema in ("intake", "workflow"):
        unpublished = await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL")
        if unpublished:
            problems.append(f"{schema}'s outbox still holds {unpublished} unpublished event(s)")
    return problems


async def _bus(conn: asyncpg.Connection, nats_url: str) -> list[str]:
    """Each event the writers recorded is once on the stream: no more messages, no fewer."""
    recorded = await conn.fetchval(
        "SELECT (SELECT count(*) FROM intake.events) + (SELECT count(*) FROM workflow.events)"
    )
    nc = await nats.connect(servers_of(nats_url))
    try:
        on_the_bus = (await nc.jetstream().stream_info(STREAM)).state.messages
    finally:
        await nc.close()
    if on_the_bus != recorded:
        return [f"the stream holds {on_the_bus} messages for {recorded} events recorded"]
    return []


async def _tracking(conn: asyncpg.Connection, url: str, cases: list[Case]) -> list[str]:
    """tracking's read model holds the cases once; its public lookup shows each at its last step."""
    problems = _same_cases("tracking", await _ids(conn, "SELECT case_id FROM tracking.cases"), cases)
    limit = asyncio.Semaphore(8)

    async def look_up(client: httpx.AsyncClient, case: Case) -> str | None:
        async with limit:
            answer = await client.get(f"/v1/track/{case.tracking_code}", params={"lang": "en"})
        if answer.status_code != 200:
            return f"{case.case_id}: lookup answered {answer.status_code}"
        view = answer.json()
        if (view["status"]["step"], view["version"]) != (case.step, case.version + 1):
            return (
                f"{case.case_id}: lookup shows {view['status']['step']} v{view['version']}, "
                f"last acknowledged {case.step} v{case.version + 1}"
            )
        return None

    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        seen = await asyncio.gather(*(look_up(client, case) for case in cases))
    if wrong := [s for s in seen if s]:
        problems.append(f"tracking's lookup is off for {len(wrong)} case(s): {wrong[:3]}")
    return problems


async def _stats(conn: asyncpg.Connection, url: str, cases: list[Case], *, since: datetime) -> list[str]:
    """stats folded each case once, at its last version, and its counts and figures count each once."""
    problems = _same_cases("stats", await _ids(conn, "SELECT case_id FROM stats.cases"), cases)
    rows = await conn.fetch("SELECT case_id::text, workflow_version, step FROM stats.cases")
    seen = {r["case_id"]: (r["workflow_version"], r["step"]) for r in rows}
    if wrong := [c.case_id for c in cases if seen.get(c.case_id, (c.version, c.step)) != (c.version, c.step)]:
        problems.append(f"stats shows {len(wrong)} case(s) at another version or step: {wrong[:3]}")
    counts = await conn.fetch(
        "SELECT district, measure, sum(n)::int AS n FROM stats.counts WHERE procedure = $1 "
        "AND (measure = 'submitted' OR measure LIKE 'decided:%') GROUP BY district, measure",
        PROCEDURE,
    )
    found = {(r["district"], r["measure"]): r["n"] for r in counts}
    expected = Counter({("", "submitted"): len(cases)})
    expected.update(("", "decided:accepted") for c in cases if c.decided)
    expected.update((c.district, "submitted") for c in cases)
    expected.update((c.district, "decided:accepted") for c in cases if c.decided)
    if found != dict(expected):
        problems.append(f"stats' counts {sorted(found.items())} differ from {sorted(expected.items())}")
    first, last = stats_domain.month_of(since), stats_domain.month_of(datetime.now(CITY_TIMEZONE))
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        answer = await client.get(
            f"/v1/stats/procedures/{PROCEDURE}",
            params={"from": first.strftime("%Y-%m"), "to": last.strftime("%Y-%m")},
        )
    if answer.status_code != 200:
        return [*problems, f"stats' figures answered {answer.status_code}: {answer.text[:200]}"]
    series: list[dict[str, Any]] = answer.json()["series"]
    figures = (
        sum(p["submitted"]["n"] or 0 for p in series),
        sum(p["decided"]["accepted"]["n"] or 0 for p in series),
    )
    if figures != (len(cases), sum(c.decided for c in cases)):
        problems.append(
            f"stats' figures say {figures[0]} submitted, {figures[1]} accepted; acknowledged "
            f"{len(cases)} and {sum(c.decided for c in cases)}"
        )
    return problems


async def _notify(
    conn: asyncpg.Connection, system: System, cases: list[Case], resends: Resends
) -> tuple[list[str], list[str], int]:
    """One notification per case and kind, each message sent, each mail once (but the `resends`)."""
    problems = _same_cases("notify", await _ids(conn, "SELECT case_id FROM notify.cases"), cases)
    noted = Counter(
        (str(r["case_id"]), r["kind"])
        for r in await conn.fetch("SELECT case_id, kind FROM notify.notifications")
    )
    expected = Counter((c.case_id, "received") for c in cases)
    expected.update((c.case_id, "decided") for c in cases if c.decided)
    if noted != expected:
        off = sorted(set(noted.items()) ^ set(expected.items()))[:4]
        problems.append(f"notify's notifications differ from one per case and kind: {off}")
    rows = await conn.fetch(
        "SELECT message_id::text, case_id::text, channel, status, attempts FROM notify.messages"
    )
    by_case = {c.case_id: c for c in cases}
    if unsent := [f"{r['message_id']} {r['status']}" for r in rows if r["status"] != "sent"]:
        problems.append(f"{len(unsent)} message(s) not sent: {unsent[:3]}")
    if len(rows) != sum(expected.values()):
        problems.append(f"{len(rows)} messages for {sum(expected.values())} notifications")
    mails = await asyncio.to_thread(system.smtp.messages)
    copies = Counter(m["Message-ID"] for m in mails)
    recipient = {m["Message-ID"]: m["To"] for m in mails}
    known = {f"<{r['message_id']}@suivi.notify>": r for r in rows}
    if strangers := set(copies) - set(known):
        problems.append(f"{len(strangers)} mail(s) notify has no record of: {sorted(strangers)[:3]}")
    for mid, row in known.items():
        case = by_case.get(row["case_id"])
        if copies[mid] == 0:
            problems.append(f"message {row['message_id']} ({row['status']}) never reached the mail server")
        elif case is not None and recipient[mid] != case.email:
            problems.append(f"message {row['message_id']} went to {recipient[mid]}, not {case.email}")
    resent = sorted(mid for mid, n in copies.items() if n > 1)
    problems += _check_resends(resent, copies, known, resends)
    return problems, resent, len(mails)


def _check_resends(
    resent: list[str], copies: Counter[str], known: dict[str, asyncpg.Record], resends: Resends
) -> list[str]:
    problems = []
    if twice := [mid for mid in resent if copies[mid] > 2]:
        problems.append(f"mail(s) sent more than twice: {twice}")
    if untried := [mid for mid in resent if mid in known and known[mid]["attempts"] < 2]:
        problems.append(f"mail(s) sent twice while notify counted one try: {untried}")
    in_flight = {f"<{message_id}@suivi.notify>" for message_id in resends.in_flight}
    if len([mid for mid in resent if mid not in in_flight]) > resends.unobserved:
        problems.append(
            f"mail(s) sent twice {resent} beyond what was in flight when the sender was cut off "
            f"({sorted(in_flight)}, and {resends.unobserved} unobserved)"
        )
    return problems


async def _dead_letters(conn: asyncpg.Connection) -> list[str]:
    problems = []
    for schema in SERVICES:
        if n := await conn.fetchval(f"SELECT count(*) FROM {schema}.dead_letters"):
            reasons = await conn.fetch(f"SELECT reason FROM {schema}.dead_letters LIMIT 3")
            problems.append(f"{schema} set {n} message(s) aside: {[r['reason'] for r in reasons]}")
    return problems


async def in_flight_messages(database_url: str) -> set[str]:
    """notify's messages marked `sending` now: read just after notify was killed, what may go twice."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT message_id::text FROM notify.messages WHERE status = 'sending'")
    finally:
        await conn.close()
    return {r[0] for r in rows}


async def caught_up(database_url: str, ledger: Ledger, *, timeout: float = 90) -> float:
    """How long until every case acknowledged so far is folded by every reader (tracking, stats, workflow,
    notify): the time a fault's effects take to heal, measured from the call."""
    ids = list(ledger.cases)
    sql = (
        "SELECT least((SELECT count(*) FROM tracking.cases WHERE case_id = ANY($1::uuid[])), "
        "(SELECT count(*) FROM stats.cases WHERE case_id = ANY($1::uuid[])), "
        "(SELECT count(*) FROM workflow.cases WHERE case_id = ANY($1::uuid[])), "
        "(SELECT count(DISTINCT case_id) FROM notify.notifications WHERE case_id = ANY($1::uuid[])))"
    )
    return await _until(database_url, lambda conn: conn.fetchval(sql, ids), len(ids), timeout=timeout)


async def _until(
    database_url: str,
    probe: Callable[[asyncpg.Connection], Awaitable[int]],
    target: int,
    *,
    timeout: float,
) -> float:
    began = time.monotonic()
    while True:
        try:
            conn = await asyncpg.connect(database_url)
            try:
                while await probe(conn) < target:
                    assert time.monotonic() - began < timeout, f"not caught up after {timeout} s"
                    await asyncio.sleep(0.2)
                return time.monotonic() - began
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            assert time.monotonic() - began < timeout, f"PostgreSQL not back after {timeout} s"
            await asyncio.sleep(0.3)
