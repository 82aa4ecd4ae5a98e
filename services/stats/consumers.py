"""stats folds case events into its aggregates: one handler per event type."""

from __future__ import annotations

import asyncpg

from services.stats import projection, reports
from shared.bus import PullConsumer
from shared.events import Envelope, EventData
from shared.events.intake import CaseImported, CaseRated, CaseSubmitted, FixChecked
from shared.events.workflow import (
    CaseAssigned,
    CaseOpened,
    DeadlineApproaching,
    DeadlinePassed,
    FixCheckDue,
    StepChanged,
)
from shared.procedures import Catalogue
from shared.projection import Apply, folding_consumer
from shared.runtime import Runtime

CONSUMER = "stats"

HANDLERS: dict[type[EventData], Apply] = {
    CaseSubmitted: projection.case_submitted,
    CaseImported: projection.case_imported,
    CaseRated: projection.case_rated,
    CaseOpened: projection.workflow_event,
    CaseAssigned: projection.workflow_event,
    StepChanged: projection.step_changed,
    DeadlineApproaching: projection.workflow_event,
    DeadlinePassed: projection.workflow_event,
    FixCheckDue: projection.workflow_event,
    FixChecked: reports.fix_checked,
}


def _case_submitted(catalogue: Catalogue) -> Apply:
    """A case's figures, and a street report's own (which reports procedures are: the catalogue says)."""

    async def apply(conn: asyncpg.Connection, envelope: Envelope, event: CaseSubmitted) -> None:
        await projection.case_submitted(conn, envelope, event)
        await reports.case_submitted(conn, event, catalogue=catalogue)

    return apply


def _case_imported(catalogue: Catalogue) -> Apply:
    """A past case's figures, and a past street report's own (with the final step its outcome names)."""

    async def apply(conn: asyncpg.Connection, envelope: Envelope, event: CaseImported) -> None:
        await projection.case_imported(conn, envelope, event)
        await reports.case_imported(conn, event, catalogue=catalogue)

    return apply


def make_consumer(runtime: Runtime, *, catalogue: Catalogue) -> PullConsumer:
    return folding_consumer(
        runtime,
        schema=projection.SCHEMA,
        consumer=CONSUMER,
        handlers={
            **HANDLERS,
            CaseSubmitted: _case_submitted(catalogue),
            CaseImported: _case_imported(catalogue),
        },
        unknown=projection.unknown_event,
    )
