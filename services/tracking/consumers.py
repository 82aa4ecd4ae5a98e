"""tracking folds case events into its read model: one handler per event type."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from services.tracking import projection
from shared.bus import ConsumerSpec, PullConsumer
from shared.events import Envelope, EventData
from shared.events.intake import CaseSubmitted, CitizenReplied
from shared.events.workflow import CaseAssigned, CaseOpened, DeadlineApproaching, DeadlinePassed, StepChanged
from shared.projection import dead_letter_recorder, fold
from shared.runtime import Runtime

log = logging.getLogger(__name__)
CONSUMER = "tracking"

Apply = Callable[[asyncpg.Connection, Envelope, Any], Awaitable[None]]
HANDLERS: dict[type[EventData], Apply] = {
    CaseSubmitted: projection.case_submitted,
    CitizenReplied: projection.citizen_replied,
    CaseOpened: projection.case_opened,
    CaseAssigned: projection.case_assigned,
    StepChanged: projection.step_changed,
    DeadlineApproaching: projection.deadline_approaching,
    DeadlinePassed: projection.deadline_passed,
}


def make_consumer(runtime: Runtime) -> PullConsumer:
    pool = runtime.pool

    async def handle(envelope: Envelope, data: EventData, stream_seq: int) -> None:
        apply = HANDLERS.get(type(data))

        async def change(conn: asyncpg.Connection) -> None:
            if apply is not None:
                await apply(conn, envelope, data)

        if await fold(
            pool,
            schema=projection.SCHEMA,
            consumer=CONSUMER,
            event_id=envelope.id,
            stream_seq=stream_seq,
            change=change,
        ):
            log.info(
                "folded %s", envelope.type, extra={"case_id": envelope.subject, "event_id": str(envelope.id)}
            )

    return PullConsumer(
        runtime.js,
        ConsumerSpec(durable=CONSUMER),
        handle,
        dead_letter_recorder(pool, schema=projection.SCHEMA, consumer=CONSUMER),
    )
