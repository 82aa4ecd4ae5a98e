"""Historical import: a city moving to Suivi brings its past cases, so their statistics are published from
day one.

    python -m services.intake.imports FILE.jsonl      (DATABASE_URL: intake's database)

or, for a file of a few MiB, `POST /v1/imports` on intake with an admin's token (`imports_api.py`): both
call the functions here, so a line means the same thing either way.

One past case per line (JSON Lines):

    {"reference": "PC-2024-0193", "procedure": "permis-construire", "channel": "counter",
     "facts": {"district": "centre"},
     "timeline": [{"at": "2024-03-04T09:12:00+01:00", "event": "submitted"},
                  {"at": "2024-03-20T14:00:00+01:00", "event": "waiting-for-citizen"},
                  {"at": "2024-04-02T10:30:00+02:00", "event": "citizen-replied"},
                  {"at": "2024-05-13T16:45:00+02:00", "event": "decided", "outcome": "accepted"}]}

Each good line becomes one `CaseImported` event (no personal data, no tracking code), written with its
outbox row, so stats folds it like a live case. `reference` is the idempotency key: importing a file twice
changes nothing. A bad line is reported with its number and what is wrong; the good lines are imported.
Lines are UTF-8 text (a byte-order mark is allowed at the start); a line that is not is reported too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import asyncpg
import h3
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.intake.settings import IntakeSettings
from shared.db import create_pool
from shared.events import make_envelope, subject_for
from shared.events.intake import CaseImported, Channel, TimelineEntry
from shared.eventstore import NewEvent, append
from shared.http import unstorable
from shared.places import CELL_RESOLUTION
from shared.procedures import CITY_TIMEZONE, Catalogue, Procedure, load_catalogue

SCHEMA = "intake"
# Case ids of imported cases are derived from the procedure and the reference: the same case, the same id.
IMPORT_NAMESPACE = uuid.UUID("5b0b6d1e-3c52-4e0b-9a57-0c1f5d2f4a11")
MAX_LINE_BYTES = 64 * 1024
# Older than any city's records on paper: an earlier year is a typo (and before year 1 is no date at all).
OLDEST = datetime(1900, 1, 1, tzinfo=UTC)
# A line as read from a file opened in binary or an HTTP body (bytes), or as text.
Line = str | bytes


class ImportLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    reference: str = Field(min_length=1, max_length=120, pattern=r"^[^\x00-\x1f]+$")
    procedure: str = Field(max_length=60)
    channel: Channel = "counter"
    facts: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    timeline: list[TimelineEntry] = Field(min_length=1, max_length=200)


class BadLine(ValueError):
    """What is wrong with one line, in words a person fixing the file can act on."""


def _check_place(facts: dict[str, Any], procedure: Procedure) -> None:
    """A street report's place, as published: one of the districts, and an H3 cell of the public size."""
    if procedure.districts is None:
        return
    district, cell = facts.get("district"), facts.get("cell")
    if district is not None and procedure.districts.get(str(district)) is None:
        raise BadLine(f"district {district!r} is not one of {', '.join(procedure.districts.codes)}")
    if cell is not None and not (
        isinstance(cell, str) and h3.is_valid_cell(cell) and h3.get_resolution(cell) == CELL_RESOLUTION
    ):
        raise BadLine(f"cell {cell!r} is not an H3 index of resolution {CELL_RESOLUTION} (about 100 m)")


def check(line: ImportLine, catalogue: Catalogue, *, now: datetime) -> CaseImported:
    """The event a good line records; `BadLine` says what is wrong with a bad one."""
    procedure = catalogue.latest(line.procedure)
    if procedure is None:
        raise BadLine(f"unknown procedure {line.procedure!r} (known: {', '.join(catalogue.codes())})")
    public = set(procedure.fact_names)
    if unknown := sorted(set(line.facts) - public):
        raise BadLine(f"facts {unknown} are not public fields of {procedure.code} (public: {sorted(public)})")
    _check_place(line.facts, procedure)
    timeline = line.timeline
    _check_timeline(timeline, now=now)
    submitted = timeline[0].at
    paused = _paused(timeline)
    rule = procedure.legal_deadline
    deadline = None
    if rule is not None and (rule.months or rule.days):
        deadline = rule.due(submitted.astimezone(CITY_TIMEZONE).date())
        if rule.clock_stops_when_waiting_for_citizen:
            deadline += timedelta(days=paused.days)
    return CaseImported(
        case_id=uuid.uuid5(IMPORT_NAMESPACE, f"{procedure.code}/{line.reference}"),
        procedure=procedure.code,
        procedure_version=procedure.version,
        service=procedure.service_for(line.facts),
        channel=line.channel,
        legal_deadline=deadline,
        facts=line.facts,
        timeline=tuple(timeline),
    )


def _check_timeline(timeline: list[TimelineEntry], *, now: datetime) -> None:
    if timeline[0].event != "submitted":
        raise BadLine("the timeline must start with the event 'submitted'")
    expected_pause = True  # waiting-for-citizen and citizen-replied alternate, starting with waiting
    for index, entry in enumerate(timeline):
        where = f"timeline[{index}] ({entry.event})"
        if entry.at.tzinfo is None:
            raise BadLine(f"{where}: 'at' needs a time zone offset, e.g. 2024-03-04T09:12:00+01:00")
        if entry.at > now:
            raise BadLine(f"{where}: {entry.at.isoformat()} is in the future")
        if entry.at < OLDEST:
            raise BadLine(f"{where}: {entry.at.isoformat()} is before 1900; is the year right?")
        if index and entry.at < timeline[index - 1].at:
            raise BadLine(f"{where}: earlier than the entry before it; list the timeline in order")
        if entry.event == "submitted" and index:
            raise BadLine(f"{where}: a case is submitted once, first")
        if entry.event == "decided" and index != len(timeline) - 1:
            raise BadLine(f"{where}: nothing can follow the decision")
        if (entry.event == "decided") != (entry.outcome is not None):
            raise BadLine(f"{where}: an outcome goes with 'decided', and 'decided' needs one")
        if entry.event in ("waiting-for-citizen", "citizen-replied"):
            if (entry.event == "waiting-for-citizen") != expected_pause:
                raise BadLine(f"{where}: 'waiting-for-citizen' and 'citizen-replied' must alternate")
            expected_pause = not expected_pause


def _paused(timeline: list[TimelineEntry]) -> timedelta:
    """How long the case waited for the citizen (until the next entry when the reply never came)."""
    total, since = timedelta(0), None
    for entry in timeline:
        if entry.event == "waiting-for-citizen":
            since = entry.at
        elif since is not None:
            total, since = total + (entry.at - since), None
    return total


@dataclass
class Summary:
    imported: int = 0
    skipped: int = 0  # imported before (same reference)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    # Past this many bad lines, the others are counted but not listed (None: list them all).
    list_at_most: int | None = None
    unlisted: int = 0
    # Lines that were JSON objects, good or bad: none at all means the body was no JSON Lines.
    objects: int = 0

    @property
    def rejected_count(self) -> int:
        return len(self.rejected) + self.unlisted

    def reject(self, number: int, reference: object, error: str) -> None:
        if self.list_at_most is not None and len(self.rejected) >= self.list_at_most:
            self.unlisted += 1
            return
        shown = reference if isinstance(reference, str) and not unstorable(reference) else None
        self.rejected.append({"line": number, "reference": shown, "error": error})


def parse(
    lines: Iterable[tuple[int, Line]], catalogue: Catalogue, summary: Summary
) -> Iterator[tuple[CaseImported, str]]:
    """The events of the good lines, with their reference; each bad line goes into `summary`'s rejected
    lines with what is wrong."""
    now = datetime.now(UTC)
    for number, raw_line in lines:
        reference = None
        try:
            text = _text(raw_line, first=number == 1)
            if not text.strip():
                continue
            raw = json.loads(text)
            if not isinstance(raw, dict):
                raise BadLine(f"not a JSON object but {_json_kind(raw)}: one past case per line, {{...}}")
            summary.objects += 1
            reference = raw.get("reference")
            if unstorable(raw):
                raise BadLine("holds a NUL character (\\u0000) or a lone surrogate (\\ud800...), not text")
            line = ImportLine.model_validate(raw)
            yield check(line, catalogue, now=now), line.reference
        except json.JSONDecodeError as exc:
            summary.reject(number, None, f"not JSON: {exc.msg} (column {exc.colno})")
        except RecursionError:
            summary.reject(number, None, "not a past case: JSON nested far too deeply")
        except ValidationError as exc:
            errors = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'line'}: {e['msg']}" for e in exc.errors()[:5]
            )
            summary.reject(number, reference, errors)
        except BadLine as exc:
            summary.reject(number, reference, str(exc))


def _text(line: Line, *, first: bool) -> str:
    size = len(line) if isinstance(line, bytes) else len(line.encode(errors="surrogatepass"))
    if size > MAX_LINE_BYTES:
        raise BadLine(f"the line is longer than {MAX_LINE_BYTES} bytes")
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadLine(
                f"not UTF-8 text (byte {exc.start + 1} of the line); save the file as UTF-8"
            ) from exc
    return line.removeprefix("\ufeff") if first else line


def _json_kind(value: object) -> str:
    kinds = {list: "a list", str: "a string", bool: "true or false", type(None): "null"}
    return kinds.get(type(value), "a number")


async def record(pool: asyncpg.Pool, events: list[CaseImported], references: dict[uuid.UUID, str]) -> int:
    """Record a batch in one transaction; returns how many were new (the others were imported before)."""
    async with pool.acquire() as conn, conn.transaction():
        new = await conn.fetch(
            "INSERT INTO intake.imported_cases(case_id, procedure, reference) "
            "SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING RETURNING case_id",
            [e.case_id for e in events],
            [e.procedure for e in events],
            [references[e.case_id] for e in events],
        )
        fresh = {r["case_id"] for r in new}
        await append(
            conn,
            schema=SCHEMA,
            events=[
                NewEvent(
                    envelope=make_envelope(e, case_id=e.case_id, procedure=e.procedure, at=e.timeline[0].at),
                    subject=subject_for(procedure=e.procedure, case_id=e.case_id, event=e),
                    version=1,
                )
                for e in events
                if e.case_id in fresh
            ],
        )
    return len(fresh)


async def import_lines(
    pool: asyncpg.Pool,
    lines: Iterable[tuple[int, Line]],
    catalogue: Catalogue,
    *,
    batch: int = 500,
    progress: TextIO | None = None,
    total: int | None = None,
    summary: Summary | None = None,
) -> Summary:
    """Parse and record numbered lines, `batch` per transaction; `summary` says what came of them."""
    summary = summary or Summary()
    pending: dict[uuid.UUID, CaseImported] = {}
    references: dict[uuid.UUID, str] = {}

    async def flush() -> None:
        if pending:
            fresh = await record(pool, list(pending.values()), references)
            summary.imported += fresh
            summary.skipped += len(pending) - fresh
            pending.clear()
            references.clear()
            _progress(progress, summary.imported + summary.skipped + summary.rejected_count, total)

    for event, reference in parse(lines, catalogue, summary):
        if event.case_id in pending:  # the same reference twice in a batch: recorded once
            summary.skipped += 1
            continue
        pending[event.case_id] = event
        references[event.case_id] = reference
        if len(pending) >= batch:
            await flush()
    await flush()
    return summary


def _progress(out: TextIO | None, done: int, total: int | None) -> None:
    if out is None:
        return
    if total:
        filled = int(40 * done / total)
        out.write(f"\r[{'#' * filled}{'.' * (40 - filled)}] {done}/{total} lines")
    else:
        out.write(f"\r{done} lines")
    out.flush()


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.intake.imports", description=__doc__.split("\n")[0]
    )
    parser.add_argument("file", type=Path, help="JSON Lines, one past case per line")
    parser.add_argument("--batch", type=int, default=500, help="lines recorded per transaction")
    args = parser.parse_args(argv)
    settings = IntakeSettings()
    try:
        with args.file.open("rb") as counted:
            total = sum(1 for _ in counted)
    except OSError as exc:
        print(f"cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    pool = await create_pool(settings.database_url, max_size=2)
    try:
        if not await pool.fetchval("SELECT to_regclass('intake.imported_cases') IS NOT NULL"):
            print(
                "intake's tables are not there: start intake once on this database (make run)",
                file=sys.stderr,
            )
            return 2
        with args.file.open("rb") as lines:  # bytes: a line that is not UTF-8 is reported, not fatal
            summary = await import_lines(
                pool,
                enumerate(lines, start=1),
                load_catalogue(settings.procedures_dir),
                batch=args.batch,
                progress=sys.stderr,
                total=total,
            )
    finally:
        await pool.close()
    print(file=sys.stderr)
    for bad in summary.rejected:
        print(f"line {bad['line']} ({bad['reference'] or 'no reference'}): {bad['error']}")
    print(
        f"imported {summary.imported}, skipped {summary.skipped} (imported before), "
        f"rejected {summary.rejected_count}"
    )
    return 1 if summary.rejected else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
