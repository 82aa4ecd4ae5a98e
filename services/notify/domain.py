"""notify's rules, without I/O: which events the citizen hears of, and when a failed message is tried again.

The citizen hears of what changes something for them, not of every step an agent takes:
- `received`: the case is recorded (the receipt, with the tracking code and the legal deadline);
- `action-needed`: the case waits for them (documents or information requested, a payment, a document
  ready to collect): any step whose `turn` is the citizen's in the procedure file;
- `decided`: an agent decided (accepted, rejected, closed);
- `tacit-decision`: the legal deadline passed and the law decided (silence vaut accord, or rejet);
- `fix-check`: a street report "done" weeks ago: is the problem really fixed? (`FixCheckDue`)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.events import Envelope, EventData
from shared.events.intake import CaseSubmitted
from shared.events.workflow import FixCheckDue, StepChanged
from shared.procedures import Procedure, Turn

# Notifications are derived from events: the same event, the same notification id, whichever replica.
NOTIFICATION_NAMESPACE = uuid.UUID("0d7f3c2e-8a41-4b1f-9e65-3a1c2b7d9f40")


class Kind(StrEnum):
    RECEIVED = "received"
    ACTION_NEEDED = "action-needed"
    DECIDED = "decided"
    TACIT_DECISION = "tacit-decision"
    FIX_CHECK = "fix-check"


class Status(StrEnum):
    """A message's delivery status, in GOV.UK Notify's words."""

    CREATED = "created"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    TEMPORARY_FAILURE = "temporary-failure"
    PERMANENT_FAILURE = "permanent-failure"


@dataclass(frozen=True)
class Notice:
    """What an event calls for telling the citizen, before anyone knows how to reach them."""

    notification_id: uuid.UUID
    kind: Kind
    procedure_version: int
    context: dict[str, Any]


def notice_for(envelope: Envelope, data: EventData, *, procedure: Procedure | None) -> Notice | None:
    """The notice an event calls for, or None if the citizen need not hear of it. `procedure`: the
    definition the case was submitted under (it says whose turn a step is)."""
    notification_id = uuid.uuid5(NOTIFICATION_NAMESPACE, str(envelope.id))
    if isinstance(data, CaseSubmitted):
        context = {
            "step": data.first_step,
            "legal_deadline": data.legal_deadline.isoformat() if data.legal_deadline else None,
            "at": data.submitted_at.isoformat(),
        }
        return Notice(notification_id, Kind.RECEIVED, data.procedure_version, context)
    version = procedure.version if procedure else 1
    if isinstance(data, FixCheckDue):
        context = {"step": data.step, "at": data.done_at.isoformat()}
        return Notice(notification_id, Kind.FIX_CHECK, version, context)
    if not isinstance(data, StepChanged):
        return None
    context = {
        "step": data.to_step,
        "from_step": data.from_step,
        "outcome": data.outcome,
        "legal_deadline": data.legal_deadline.isoformat() if data.legal_deadline else None,
        "at": data.at.isoformat(),
    }
    if data.outcome is not None:
        kind = Kind.TACIT_DECISION if data.tacit else Kind.DECIDED
        return Notice(notification_id, kind, version, context)
    step = procedure.steps_by_code.get(data.to_step) if procedure else None
    if step is not None and step.turn is Turn.CITIZEN:
        return Notice(notification_id, Kind.ACTION_NEEDED, version, context)
    return None


def next_try(*, attempts: int, schedule: tuple[float, ...], now: datetime) -> datetime | None:
    """When to try again after `attempts` failed tries, or None once the schedule is used up."""
    if attempts > len(schedule):
        return None
    return now + timedelta(seconds=schedule[attempts - 1])
