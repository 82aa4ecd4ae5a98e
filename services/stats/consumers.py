"""stats folds case events into its aggregates: one handler per event type."""

from __future__ import annotations

from services.stats import projection
from shared.bus import PullConsumer
from shared.events import EventData
from shared.events.intake import CaseImported, CaseRated, CaseSubmitted
from shared.events.workflow import CaseAssigned, CaseOpened, DeadlineApproaching, DeadlinePassed, StepChanged
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
}


def make_consumer(runtime: Runtime) -> PullConsumer:
    return folding_consumer(
        runtime,
        schema=projection.SCHEMA,
        consumer=CONSUMER,
        handlers=HANDLERS,
        unknown=projection.unknown_event,
    )
