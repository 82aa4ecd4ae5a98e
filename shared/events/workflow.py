"""Events produced by workflow. Emitted in `services/workflow/domain.py`.

Agents are named by their pseudonymous id from the identity provider; comments and reasons are free
text and stay in workflow's database (they may name people).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import ClassVar, Literal

from shared.events import EventData, register

Actor = Literal["agent", "citizen", "system"]


class WorkflowEvent(EventData):
    """Every workflow event names its case and the case's version once it is appended (1, 2, 3...)."""

    source: ClassVar[str] = "suivi/workflow"
    case_id: uuid.UUID
    version: int


@register
class CaseOpened(WorkflowEvent):
    """workflow took charge of a submitted case, in the first step of its procedure version."""

    type: ClassVar[str] = "fr.suivi.case.opened.v1"
    name: ClassVar[str] = "opened"

    procedure: str
    procedure_version: int
    service: str
    step: str
    legal_deadline: date | None
    opened_at: datetime
    # When the citizen submitted the case (from `CaseSubmitted`), so that the case can be rebuilt from
    # workflow's own events. Absent from cases opened before it was added.
    submitted_at: datetime | None = None


@register
class CaseAssigned(WorkflowEvent):
    """An agent took the case, or a supervisor gave it to an agent."""

    type: ClassVar[str] = "fr.suivi.case.assigned.v1"
    name: ClassVar[str] = "assigned"

    assignee: str
    by: str
    at: datetime


@register
class StepChanged(WorkflowEvent):
    """The case moved from one step of its procedure to another; `outcome` is set when that decides it."""

    type: ClassVar[str] = "fr.suivi.case.step-changed.v1"
    name: ClassVar[str] = "step-changed"

    action: str
    from_step: str
    to_step: str
    actor: Actor
    by: str | None
    at: datetime
    # The legal clock: paused while the citizen is asked for something, when the procedure says so.
    clock_paused: bool
    legal_deadline: date | None
    outcome: str | None = None
    tacit: bool = False
    # A street report closed as a duplicate: the report it duplicates, whose progress its reporter now
    # follows.
    duplicate_of: uuid.UUID | None = None


@register
class DeadlineApproaching(WorkflowEvent):
    """The legal deadline is a few days away and the case is not decided."""

    type: ClassVar[str] = "fr.suivi.case.deadline-approaching.v1"
    name: ClassVar[str] = "deadline-approaching"

    legal_deadline: date
    days_left: int
    at: datetime


@register
class DeadlinePassed(WorkflowEvent):
    """The legal deadline passed with no decision (followed by a tacit decision where the law says so)."""

    type: ClassVar[str] = "fr.suivi.case.deadline-passed.v1"
    name: ClassVar[str] = "deadline-passed"

    legal_deadline: date
    step: str
    at: datetime


@register
class FixCheckDue(WorkflowEvent):
    """A street report has been "done" for the days its procedure says (`ask_if_fixed_after_days`):
    its reporter is now asked whether the problem is really fixed (notify writes, tracking asks)."""

    type: ClassVar[str] = "fr.suivi.case.fix-check-due.v1"
    name: ClassVar[str] = "fix-check-due"

    step: str
    # The version of the step change into "done" that this asks about (`FixChecked.done_version`).
    done_version: int
    done_at: datetime
    at: datetime
