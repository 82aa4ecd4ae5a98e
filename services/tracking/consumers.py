"""tracking folds case events into its read model: one handler per event type."""

from __future__ import annotations

from services.tracking import projection
from shared.bus import PullConsumer
from shared.events import EventData
from shared.events.intake import CaseRated, CaseSubmitted, CitizenReplied, FixChecked
from shared.events.workflow import (
    CaseAssigned,
    CaseOpened,
    DeadlineApproaching,
    DeadlinePassed,
    FixCheckDue,
    StepChanged,
)
from shared.projection import Apply, folding_consumer
from shared.runtime import Runtime

CONSUMER = "tracking"

HANDLERS: dict[type[EventData], Apply] = {
    CaseSubmitted: projection.case_submitted,
    CitizenReplied: projection.citizen_replied,
    CaseRated: projection.case_rated,
    CaseOpened: projection.case_opened,
    CaseAssigned: projection.case_assigned,
    StepChanged: projection.step_changed,
    DeadlineApproaching: projection.deadline_approaching,
    DeadlinePassed: projection.deadline_passed,
    FixCheckDue: projection.fix_check_due,
    FixChecked: projection.fix_checked,
}


def make_consumer(runtime: Runtime) -> PullConsumer:
    return folding_consumer(
        runtime,
        schema=projection.SCHEMA,
        consumer=CONSUMER,
        handlers=HANDLERS,
        unknown=projection.unknown_event,
    )
