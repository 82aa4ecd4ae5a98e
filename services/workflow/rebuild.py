"""Rebuild workflow's `cases` table from `workflow.events`: `python -m services.workflow.rebuild [--check]`.

Each case is folded from its events, in version order, through `domain.evolve`; the result is compared
with the stored row, column by column, and the row is rewritten where they differ (or written where it is
missing). With `--check`, nothing is written: the differences are only reported (exit status 1 if any).
Each case is rebuilt in its own transaction, under the row lock every command takes, so workflow can keep
running meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from services.workflow import domain, queries
from shared.db import create_pool
from shared.events import MalformedEvent, UnknownEvent
from shared.events.workflow import CaseOpened, WorkflowEvent
from shared.procedures import Catalogue, load_catalogue
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass
class Report:
    cases: int = 0
    # case id -> the columns whose stored value differed from the fold of the events
    differed: dict[uuid.UUID, list[str]] = field(default_factory=dict)
    # case id -> why it could not be folded (left as it was)
    failed: dict[uuid.UUID, str] = field(default_factory=dict)
    # rows in `cases` no event records: reported, left alone
    orphans: list[uuid.UUID] = field(default_factory=list)
    written: bool = True

    def summary(self) -> str:
        verb = "rewrote" if self.written else "would rewrite"
        return (
            f"{self.cases} cases folded from workflow.events: {len(self.differed)} differed from the "
            f"stored snapshot ({verb} them), {len(self.failed)} could not be folded, "
            f"{len(self.orphans)} stored cases have no events"
        )


def replay(case_id: uuid.UUID, events: Sequence[WorkflowEvent], catalogue: Catalogue) -> domain.CaseState:
    """A case as its events say it is."""
    if not events or not isinstance(events[0], CaseOpened):
        raise domain.BrokenHistory(f"case {case_id} does not start with {CaseOpened.type}")
    opened = events[0]
    procedure = queries.procedure_of(catalogue, opened.procedure, opened.procedure_version)
    return domain.fold(domain.unopened(case_id, procedure), events)


def differences(stored: dict[str, Any] | None, rebuilt: dict[str, Any]) -> list[str]:
    if stored is None:
        return ["(missing)"]
    return [c for c in queries.SNAPSHOT_COLUMNS if stored[c] != rebuilt[c]]


async def rebuild_case(
    conn: asyncpg.Connection, case_id: uuid.UUID, catalogue: Catalogue, *, write: bool
) -> list[str]:
    """Fold one case and rewrite its row if it differs; the columns that differed."""
    async with conn.transaction():
        stored = await queries.snapshot_row(conn, case_id)  # locked: no command moves it meanwhile
        events = await queries.events_of(conn, case_id)
        rebuilt = queries.snapshot_of(replay(case_id, events, catalogue))
        opened = events[0]
        if isinstance(opened, CaseOpened) and opened.submitted_at is None and stored is not None:
            # Opened before events carried it: the stored date is the only record of the submission.
            rebuilt["submitted_at"] = stored["submitted_at"]
        changed = differences(stored, rebuilt)
        if changed and write:
            await queries.write_snapshot(conn, rebuilt)
    return changed


async def rebuild(pool: asyncpg.Pool, catalogue: Catalogue, *, write: bool = True) -> Report:
    report = Report(written=write)
    async with pool.acquire() as conn:
        case_ids = await queries.case_ids_with_events(conn)
        for case_id in case_ids:
            report.cases += 1
            try:
                changed = await rebuild_case(conn, case_id, catalogue, write=write)
            except (LookupError, domain.BrokenHistory, UnknownEvent, MalformedEvent) as exc:
                report.failed[case_id] = str(exc)
                log.error("case not rebuilt: %s", exc, extra={"case_id": str(case_id)})
                continue
            if changed:
                report.differed[case_id] = changed
                log.warning(
                    "stored case differed from its events in %s%s",
                    ", ".join(changed),
                    "; rewritten" if write else "",
                    extra={"case_id": str(case_id)},
                )
        report.orphans = await queries.orphan_snapshots(conn)
    return report


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.workflow.rebuild", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--check", action="store_true", help="report the differences, write nothing")
    args = parser.parse_args(argv)
    settings = ServiceSettings()
    pool = await create_pool(settings.database_url, max_size=2)
    try:
        if not await pool.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{queries.SCHEMA}.cases"):
            print("workflow's tables are not there: start workflow once on this database", file=sys.stderr)
            return 2
        report = await rebuild(pool, load_catalogue(settings.procedures_dir), write=not args.check)
    finally:
        await pool.close()
    for case_id, columns in report.differed.items():
        print(f"case {case_id}: {', '.join(columns)} differed")
    for case_id, reason in report.failed.items():
        print(f"case {case_id}: not rebuilt: {reason}")
    for case_id in report.orphans:
        print(f"case {case_id}: stored, but no event records it (left as it is; look into it)")
    print(report.summary())
    if report.failed or report.orphans:
        return 1
    return 1 if args.check and report.differed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
