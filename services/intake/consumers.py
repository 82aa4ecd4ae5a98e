"""intake folds one kind of workflow event, `StepChanged`: the first decision, so that a citizen can rate
the service once their case is decided (`ratings.py`), and where each case stands, so that a street
report's reporter can say whether its "done" is really fixed (`fix_checks.py`) and open reports nearby
can be suggested."""

from __future__ import annotations

import asyncpg

from shared.bus import PullConsumer
from shared.events import Envelope, EventData, subjects_of
from shared.events.workflow import StepChanged
from shared.projection import Apply, folding_consumer
from shared.runtime import Runtime

CONSUMER = "intake"
SCHEMA = "intake"


async def step_changed(conn: asyncpg.Connection, envelope: Envelope, event: StepChanged) -> None:
    await conn.execute(
        "INSERT INTO intake.steps(case_id, step, outcome, version, done_version, duplicate_of) "
        "VALUES ($1, $2, $3::text, $4::int, CASE WHEN $3::text IS NULL THEN NULL ELSE $4::int END, $5) "
        "ON CONFLICT (case_id) DO UPDATE SET step = EXCLUDED.step, outcome = EXCLUDED.outcome, "
        "version = EXCLUDED.version, duplicate_of = EXCLUDED.duplicate_of, "
        "done_version = coalesce(EXCLUDED.done_version, intake.steps.done_version) "
        "WHERE intake.steps.version < EXCLUDED.version",
        event.case_id,
        event.to_step,
        event.outcome,
        event.version,
        event.duplicate_of,
    )
    if event.outcome is not None:
        await conn.execute(
            "INSERT INTO intake.decisions(case_id, outcome, decided_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (case_id) DO NOTHING",
            event.case_id,
            event.outcome,
            event.at,
        )


def make_consumer(runtime: Runtime) -> PullConsumer:
    handlers: dict[type[EventData], Apply] = {StepChanged: step_changed}
    return folding_consumer(
        runtime, schema=SCHEMA, consumer=CONSUMER, handlers=handlers, filter_subjects=subjects_of(StepChanged)
    )
