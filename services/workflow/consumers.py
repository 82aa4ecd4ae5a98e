"""workflow reacts to intake's events: it opens each submitted case, moves a case on when the citizen
answers a request, and reopens a street report whose reporter says it is not fixed."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from services.workflow import domain, queries
from services.workflow.clock import Clock
from shared.bus import Nak, PullConsumer
from shared.events import Envelope, EventData, subjects_of
from shared.events.intake import CaseSubmitted, CitizenReplied, FixChecked
from shared.procedures import Catalogue
from shared.projection import Apply, folding_consumer
from shared.runtime import Runtime

log = logging.getLogger(__name__)
CONSUMER = "workflow"


async def open_submitted_case(
    conn: asyncpg.Connection, event: CaseSubmitted, catalogue: Catalogue, clock: Clock
) -> None:
    procedure = catalogue.get(event.procedure, event.procedure_version)
    if procedure is None:
        raise LookupError(
            f"procedure {event.procedure} v{event.procedure_version} is not in workflow's catalogue: "
            "deploy the definition file, the case will then be opened"
        )
    state, opened = domain.open_case(event, procedure, now=clock.now())
    if await queries.insert(conn, state):
        await queries.record(conn, state, [opened])


async def take_citizen_reply(
    conn: asyncpg.Connection, event: CitizenReplied, catalogue: Catalogue, clock: Clock
) -> None:
    state = await queries.load(conn, event.case_id, catalogue, lock=True)
    if state is None:
        raise Nak("the case is not opened yet")
    action = domain.citizen_transition(state)
    if action is None:
        log.info(
            "citizen replied while the case was not waiting for them; kept on record in intake",
            extra={"case_id": str(event.case_id)},
        )
        return
    new_state, events = domain.move(state, action=action, actor=None, now=clock.now())
    await queries.save(conn, new_state)
    await queries.record(conn, new_state, events)


async def take_fix_check(
    conn: asyncpg.Connection, event: FixChecked, catalogue: Catalogue, clock: Clock
) -> None:
    """The reporter said whether a "done" street report is really fixed: "not fixed" reopens it."""
    if event.fixed:
        return
    state = await queries.load(conn, event.case_id, catalogue, lock=True)
    if state is None:
        raise Nak("the case is not opened yet")
    new_state, events = domain.reopen(state, done_version=event.done_version, now=clock.now())
    if not events:
        log.info(
            "reporter said not fixed, but the report has moved on since; kept on record in intake",
            extra={"case_id": str(event.case_id)},
        )
        return
    await queries.save(conn, new_state)
    await queries.record(conn, new_state, events)
    log.info("report reopened: its reporter says it is not fixed", extra={"case_id": str(event.case_id)})


Handler = Callable[[asyncpg.Connection, Any, Catalogue, Clock], Awaitable[None]]
HANDLERS: dict[type[EventData], Handler] = {
    CaseSubmitted: open_submitted_case,
    CitizenReplied: take_citizen_reply,
    FixChecked: take_fix_check,
}


def make_consumer(runtime: Runtime, *, catalogue: Catalogue, clock: Clock) -> PullConsumer:
    def bound(handler: Handler) -> Apply:
        async def apply(conn: asyncpg.Connection, envelope: Envelope, data: Any) -> None:
            await handler(conn, data, catalogue, clock)

        return apply

    return folding_consumer(
        runtime,
        schema=queries.SCHEMA,
        consumer=CONSUMER,
        handlers={event: bound(handler) for event, handler in HANDLERS.items()},
        filter_subjects=subjects_of(*HANDLERS),
    )
