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


@register
class CaseOpened(EventData):
    """workflow took charge of a submitted case, in the first step of its procedure version."""

    type: ClassVar[str] = "fr.suivi.case.opened.v1"
    name: ClassVar[str] = "opened"
    source: ClassVar[str] = "suivi/workflow"

    case_id: uuid.UUID
    version: int
    procedure: str
    procedure_version: int
    service: str
    step: str
    legal_deadline: date | None
    opened_at: datetime


@register
class CaseAssigned(EventData):
    """An agent took the case, or a supervisor gave it to an agent."""

    type: ClassVar[str] = "fr.suivi.case.assigned.v1"
    name: ClassVar[str] = "assigned"
    source: ClassVar[str] = "suivi/workflow"

    case_id: uuid.UUID
    version: int
    assignee: str
    by: str
    at: datetime


@register
class StepChanged(EventData):
    """The case moved from one step of its procedure to another; `outcome` is set when that decides it."""

    type: ClassVar[str] = "fr.suivi.case.step-changed.v1"
    name: ClassVar[str] = "step-changed"
    source: ClassVar[str] = "suivi/workflow"

    case_id: uuid.UUID
    version: int
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


@register
class DeadlineApproaching(EventData):
    """The legal deadline is a few days away and the case is not decided."""

    type: ClassVar[str] = "fr.suivi.case.deadline-approaching.v1"
    name: ClassVar[str] = "deadline-approaching"
    source: ClassVar[str] = "suivi/workflow"

    case_id: uuid.UUID
    version: int
    legal_deadline: date
    days_left: int
    at: datetime


@register
class DeadlinePassed(EventData):
    """The legal deadline passed with no decision (followed by a tacit decision where the law says so)."""

    type: ClassVar[str] = "fr.suivi.case.deadline-passed.v1"
    name: ClassVar[str] = "deadline-passed"
    source: ClassVar[str] = "suivi/workflow"

    case_id: uuid.UUID
    version: int
    legal_deadline: date
    step: str
    at: datetime
