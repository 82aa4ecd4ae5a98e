"""notify folds every case event: it keeps its own copy of the event (for webhooks and their replays),
notes what the citizen should hear of (`domain.notice_for`), and queues the event for each webhook
subscription whose filters match, all in the fold's transaction (exactly once in effect).

The messages themselves go out later (`sender.py`, `webhooks.py`), from these rows.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from services.notify import domain, webhooks
from shared.bus import PullConsumer
from shared.events import Envelope, EventData, event_types
from shared.events.intake import CaseErased, CaseImported, CaseSubmitted
from shared.events.workflow import CaseOpened
from shared.procedures import Catalogue
from shared.projection import Apply, folding_consumer
from shared.runtime import Runtime

SCHEMA = "notify"
ERASED = "the citizen's personal data was erased"
CONSUMER = "notify"


async def _stream_seq(conn: asyncpg.Connection, envelope: Envelope) -> int:
    # `shared.projection.fold` recorded the event, with its position, a moment ago in this transaction.
    seq: int = await conn.fetchval(
        "SELECT stream_seq FROM notify.folded_events WHERE event_id = $1", envelope.id
    )
    return seq


async def _case_of(
    conn: asyncpg.Connection, envelope: Envelope, data: EventData | None
) -> asyncpg.Record | None:
    """The case's procedure version and service: recorded from its first event, read for the others."""
    if isinstance(data, CaseSubmitted | CaseImported | CaseOpened):
        await conn.execute(
            "INSERT INTO notify.cases(case_id, procedure, procedure_version, service) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (case_id) DO NOTHING",
            data.case_id,
            data.procedure,
            data.procedure_version,
            data.service,
        )
    return await conn.fetchrow(
        "SELECT procedure_version, service FROM notify.cases WHERE case_id = $1", envelope.case_id
    )


async def forget(conn: asyncpg.Connection, event: CaseErased) -> None:
    """The case's personal data was erased in intake: nothing more goes to the citizen (notify never kept
    their address; a provider's error could have quoted it, so the reasons go too). A message being sent
    at this instant finishes; the next one finds no address."""
    await conn.execute(
        "UPDATE notify.notifications SET state = 'erased', last_error = NULL "
        "WHERE case_id = $1 AND state = 'pending'",
        event.case_id,
    )
    await conn.execute(
        "UPDATE notify.messages SET reason = $2, updated_at = now(), "
        "status = CASE WHEN status IN ('created', 'temporary-failure') THEN 'permanent-failure' ELSE status END "
        "WHERE case_id = $1 AND (reason IS NOT NULL OR status IN ('created', 'temporary-failure'))",
        event.case_id,
        ERASED,
    )


async def record(
    conn: asyncpg.Connection, envelope: Envelope, data: EventData | None, *, catalogue: Catalogue
) -> None:
    """Fold one event (of a type this release may not know: `data` is then None)."""
    seq = await _stream_seq(conn, envelope)
    case = await _case_of(conn, envelope, data)
    service = case["service"] if case else None
    await conn.execute(
        "INSERT INTO notify.events(event_id, stream_seq, case_id, procedure, type, service, time, envelope) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        envelope.id,
        seq,
        envelope.case_id,
        envelope.procedure,
        envelope.type,
        service,
        envelope.time,
        json.loads(envelope.model_dump_json()),
    )
    if isinstance(data, CaseErased):
        await forget(conn, data)
    elif data is not None:
        procedure = catalogue.get(envelope.procedure, case["procedure_version"]) if case else None
        notice = domain.notice_for(envelope, data, procedure=procedure)
        if notice is not None:
            await _note(conn, envelope, notice, stream_seq=seq)
    await webhooks.enqueue(conn, envelope=envelope, stream_seq=seq, service=service)


async def _note(
    conn: asyncpg.Connection, envelope: Envelope, notice: domain.Notice, *, stream_seq: int
) -> None:
    await conn.execute(
        "INSERT INTO notify.notifications(notification_id, event_id, case_id, procedure, procedure_version, "
        "kind, context, stream_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        notice.notification_id,
        envelope.id,
        envelope.case_id,
        envelope.procedure,
        notice.procedure_version,
        notice.kind.value,
        notice.context,
        stream_seq,
    )
    await conn.execute("NOTIFY notify_work")


def make_consumer(runtime: Runtime, *, catalogue: Catalogue) -> PullConsumer:
    async def apply(conn: asyncpg.Connection, envelope: Envelope, data: Any) -> None:
        await record(conn, envelope, data, catalogue=catalogue)

    async def unknown(conn: asyncpg.Connection, envelope: Envelope) -> None:
        await record(conn, envelope, None, catalogue=catalogue)

    handlers: dict[type[EventData], Apply] = dict.fromkeys(event_types().values(), apply)
    return folding_consumer(runtime, schema=SCHEMA, consumer=CONSUMER, handlers=handlers, unknown=unknown)
