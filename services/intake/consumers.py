"""intake folds one kind of workflow event: a decision (a `StepChanged` with an outcome), so that a citizen
can rate the service once their case is decided (`ratings.py`)."""

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
