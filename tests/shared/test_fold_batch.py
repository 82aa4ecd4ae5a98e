"""A reader folds a fetched batch all at once (`shared.projection.fold_all`), and the careful way, one
event at a time, only when an event of the batch must wait or fails: either way every event's change is
made once, a case's workflow events in version order, and the position is the highest seq folded.

The reader here is a small one of the test's own (`applied` records each change made), folded in stream
order or its cases side by side (`fold_side_by_side`); its events are published straight to JetStream, all
before it starts when they must come in one batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest

from shared import bus
from shared.events import STREAM, Envelope, EventData, event_types, make_envelope, subject_for
from shared.events.intake import CaseSubmitted
from shared.events.workflow import CaseAssigned, CaseOpened, StepChanged, WorkflowEvent
from shared.projection import Apply, fold_side_by_side, folding_consumer, next_workflow_event
from shared.runtime import open_runtime
from shared.settings import ServiceSettings
from tests.builders import case_submitted
from tests.conftest import Env
from tests.waiting import eventually, query, scalar

IN_ORDER, SIDE_BY_SIDE = "foldtest", "foldtest_side_by_side"
fold_side_by_side(SIDE_BY_SIDE, key=lambda envelope: envelope.subject)
PROCEDURE = "permis-construire"
FAST: dict[str, Any] = {
    "consumer_poison_attempts": 2,
    "consumer_retry_max_seconds": 0.2,
    "dead_letter_replay_poll_seconds": 0.2,
}
MIGRATION = """
CREATE TABLE cases (case_id uuid PRIMARY KEY, workflow_version integer NOT NULL DEFAULT 0);
-- Every change made, in the order made: an event's change made twice shows as two rows.
CREATE TABLE applied (n bigserial PRIMARY KEY, event_id uuid NOT NULL, case_id uuid NOT NULL, version integer);
"""


def handlers(schema: str) -> dict[type[EventData], Apply]:
    async def applied(conn: asyncpg.Connection, envelope: Envelope, version: int | None) -> None:
        await conn.execute(
            f"INSERT INTO {schema}.applied(event_id, case_id, version) VALUES ($1, $2, $3)",
            envelope.id,
            envelope.case_id,
            version,
        )

    async def submitted(conn: asyncpg.Connection, envelope: Envelope, event: CaseSubmitted) -> None:
        if event.facts.get("poison"):
            raise ValueError("this event is bad in itself")
        await conn.execute(f"INSERT INTO {schema}.cases(case_id) VALUES ($1)", event.case_id)
        await applied(conn, envelope, None)

    async def moved(conn: asyncpg.Connection, envelope: Envelope, event: WorkflowEvent) -> None:
        table = f"{schema}.cases"
        if await next_workflow_event(conn, table=table, case_id=event.case_id, version=event.version):
            await conn.execute(
                f"UPDATE {table} SET workflow_version = $2 WHERE case_id = $1", event.case_id, event.version
            )
            await applied(conn, envelope, event.version)

    return {CaseSubmitted: submitted, CaseOpened: moved, CaseAssigned: moved, StepChanged: moved}


@contextlib.asynccontextmanager
async def folding(env: Env, tmp_path: Path, schema: str) -> AsyncIterator[None]:
    """The reader, running (its consumer named after its schema) until the block ends."""
    migrations = tmp_path / f"{schema}-migrations"
    migrations.mkdir(exist_ok=True)
    (migrations / "001_foldtest.sql").write_text(MIGRATION)
    settings = ServiceSettings(
        database_url=env.database_url, nats_url=env.nats_url, environment="test", **FAST
    )
    async with open_runtime(
        settings, service=schema, schema=schema, migrations=migrations, shared_sql=("projection",)
    ) as runtime:
        consumer = folding_consumer(runtime, schema=schema, consumer=schema, handlers=handlers(schema))
        task = asyncio.create_task(consumer.run())
        try:
            yield
        finally:
            consumer.stop()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class Stream:
    """Publishes cases' events to JetStream, as the relays would."""

    def __init__(self, env: Env) -> None:
        self.env = env

    async def publish(self, *envelopes: Envelope, dedupe: bool = True) -> list[int]:
        """Publish in this order; returns their stream seqs. `dedupe=False` leaves out Nats-Msg-Id, as a
        relay republishing after the duplicate window would."""
        nc = await nats.connect(self.env.nats_url)
        try:
            js = nc.jetstream()
            await bus.ensure_stream(js)
            seqs = []
            for envelope in envelopes:
                event = event_types()[envelope.type]
                ack = await js.publish(
                    subject_for(procedure=PROCEDURE, case_id=envelope.case_id, event=event),
                    envelope.model_dump_json().encode(),
                    stream=STREAM,
                    headers={"Nats-Msg-Id": str(envelope.id)} if dedupe else None,
                )
                seqs.append(int(ack.seq))
            return seqs
        finally:
            await nc.close()


def submitted(case_id: uuid.UUID, **facts: Any) -> Envelope:
    event = case_submitted(case_id, at=datetime.now(UTC), facts=facts, procedure=PROCEDURE)
    return make_envelope(event, case_id=case_id, procedure=PROCEDURE)


def workflow(case_id: uuid.UUID, version: int) -> Envelope:
    """The case's workflow event of `version`: opened, then assigned, then steps."""
    at = datetime.now(UTC)
    event: WorkflowEvent
    if version == 1:
        event = CaseOpened(
            case_id=case_id,
            version=1,
            procedure=PROCEDURE,
            procedure_version=1,
            service="urbanisme",
            step="received",
            legal_deadline=None,
            opened_at=at,
        )
    elif version == 2:
        event = CaseAssigned(case_id=case_id, version=2, assignee="agent-7f3a", by="agent-7f3a", at=at)
    else:
        event = StepChanged(
            case_id=case_id,
            version=version,
            action="start-check",
            from_step="received",
            to_step="completeness-check",
            actor="agent",
            by="agent-7f3a",
            at=at,
            clock_paused=False,
            legal_deadline=None,
        )
    return make_envelope(event, case_id=case_id, procedure=PROCEDURE)


async def changes(env: Env, schema: str) -> list[tuple[uuid.UUID, int | None]]:
    """Every change made, in the order made: (event id, version)."""
    rows = await query(env.database_url, f"SELECT event_id, version FROM {schema}.applied ORDER BY n")
    return [(r["event_id"], r["version"]) for r in rows]


async def versions_of(env: Env, schema: str, case_id: uuid.UUID) -> list[int | None]:
    """The versions of a case's changes, in the order made (None: its submission)."""
    rows = await query(
        env.database_url, f"SELECT version FROM {schema}.applied WHERE case_id = $1 ORDER BY n", case_id
    )
    return [r["version"] for r in rows]


async def all_made(env: Env, schema: str, count: int) -> list[tuple[uuid.UUID, int | None]]:
    return await eventually(lambda: changes(env, schema), until=lambda made: len(made) >= count)


async def position(env: Env, schema: str) -> int:
    return int(await scalar(env.database_url, f"SELECT stream_seq FROM {schema}.consumer_positions"))


async def highest_folded(env: Env, schema: str) -> int:
    return int(await scalar(env.database_url, f"SELECT max(stream_seq) FROM {schema}.folded_events"))


@pytest.fixture(params=[IN_ORDER, SIDE_BY_SIDE])
def schema(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_a_batch_with_events_folded_before_folds_the_others_once(
    env: Env, tmp_path: Path, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    stream = Stream(env)
    a, b = uuid.uuid4(), uuid.uuid4()
    a_submitted, b_submitted, a_opened = submitted(a), submitted(b), workflow(a, 1)
    await stream.publish(a_submitted)
    async with folding(env, tmp_path, schema):
        await all_made(env, schema, 1)

    # A's submission again (its ack was lost, or the relay published it again), B's twice, then A opened:
    # one batch, when the reader starts again.
    caplog.set_level(logging.INFO, logger="shared.projection")
    seqs = await stream.publish(a_submitted, b_submitted, b_submitted, a_opened, dedupe=False)
    async with folding(env, tmp_path, schema):
        made = await all_made(env, schema, 3)
        await eventually(lambda: position(env, schema), until=lambda seq: seq == seqs[-1])

    assert made == [(a_submitted.id, None), (b_submitted.id, None), (a_opened.id, 1)]
    assert any(
        r.getMessage() == f"{schema} folded seq {seqs[0]} to {seqs[-1]}: 4 event(s), 2 new"
        for r in caplog.records
    ), "the batch was folded at once"
    assert await position(env, schema) == await highest_folded(env, schema) == seqs[-1]


async def test_an_event_bad_in_itself_is_set_aside_and_the_rest_of_its_batch_folded_once(
    env: Env, tmp_path: Path, schema: str
) -> None:
    stream = Stream(env)
    a, bad, b = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    batch = [submitted(a), submitted(bad, poison=True), submitted(b), workflow(a, 1), workflow(b, 1)]
    seqs = await stream.publish(*batch)
    async with folding(env, tmp_path, schema):
        made = await all_made(env, schema, 4)
        letters = await eventually(
            lambda: query(env.database_url, f"SELECT stream_seq, reason FROM {schema}.dead_letters"),
            until=lambda rows: len(rows) == 1,
        )

    assert sorted(made) == sorted(
        [(batch[0].id, None), (batch[2].id, None), (batch[3].id, 1), (batch[4].id, 1)]
    )
    assert [r["stream_seq"] for r in letters] == [seqs[1]]
    assert "failed 2 times" in letters[0]["reason"] and "bad in itself" in letters[0]["reason"]
    assert await scalar(env.database_url, f"SELECT count(*) FROM {schema}.cases WHERE case_id = $1", bad) == 0
    assert await position(env, schema) == await highest_folded(env, schema) == seqs[-1]


async def test_a_workflow_event_before_its_predecessor_in_the_same_batch_waits_for_it(
    env: Env, tmp_path: Path, schema: str
) -> None:
    stream = Stream(env)
    a = uuid.uuid4()
    # Versions 1, 3, 4, 2 of the case, in one batch with its submission.
    batch = [submitted(a), workflow(a, 1), workflow(a, 3), workflow(a, 4), workflow(a, 2)]
    seqs = await stream.publish(*batch)
    async with folding(env, tmp_path, schema):
        made = await all_made(env, schema, 5)
        await eventually(lambda: position(env, schema), until=lambda seq: seq == seqs[-1])

    assert await versions_of(env, schema, a) == [None, 1, 2, 3, 4]
    assert sorted(event_id for event_id, _ in made) == sorted(e.id for e in batch)
    assert await scalar(env.database_url, f"SELECT workflow_version FROM {schema}.cases") == 4
    assert await position(env, schema) == await highest_folded(env, schema) == seqs[-1]


async def test_a_workflow_event_whose_predecessor_comes_in_a_later_batch_waits_for_it(
    env: Env, tmp_path: Path, schema: str
) -> None:
    stream = Stream(env)
    a, b = uuid.uuid4(), uuid.uuid4()
    early = [submitted(a), submitted(b), workflow(a, 2), workflow(b, 1)]
    early_seqs = await stream.publish(*early)
    async with folding(env, tmp_path, schema):
        await all_made(env, schema, 3)  # all but A's version 2, which waits for its predecessor
        later = [workflow(a, 1), workflow(b, 2), workflow(a, 3)]
        seqs = await stream.publish(*later)
        made = await all_made(env, schema, 7)
        await eventually(lambda: position(env, schema), until=lambda seq: seq == seqs[-1])

    assert await versions_of(env, schema, a) == [None, 1, 2, 3]
    assert await versions_of(env, schema, b) == [None, 1, 2]
    assert sorted(event_id for event_id, _ in made) == sorted(e.id for e in early + later)
    assert early_seqs[-1] < seqs[0]
    assert await position(env, schema) == await highest_folded(env, schema) == seqs[-1]
