"""Events produced by intake. Emitted in `services/intake/domain.py`.

No personal data here: the applicant and non-public form fields stay in intake's database.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events import EventData, register

Channel = Literal["web", "counter", "phone", "mail"]


@register
class CaseSubmitted(EventData):
    """A citizen (or an agent for them) submitted a procedure; the case exists from now on."""

    type: ClassVar[str] = "fr.suivi.case.submitted.v1"
    name: ClassVar[str] = "submitted"
    source: ClassVar[str] = "suivi/intake"

    case_id: uuid.UUID
    # sha256 of the normalized tracking code: readers can index lookups without ever holding the code.
    tracking_code_digest: str
    procedure: str
    procedure_version: int
    service: str
    channel: Channel
    language: str
    submitted_at: datetime
    legal_deadline: date | None
    first_step: str
    # Values of the form fields the procedure marks `public` (category, district...), never identity.
    facts: dict[str, str | int | float | bool | None]


@register
class CitizenReplied(EventData):
    """The citizen answered a request (documents, information) with their tracking code.

    The message and the documents stay in intake; this says only that an answer arrived.
    """

    type: ClassVar[str] = "fr.suivi.case.citizen-replied.v1"
    name: ClassVar[str] = "citizen-replied"
    source: ClassVar[str] = "suivi/intake"

    case_id: uuid.UUID
    reply_id: uuid.UUID
    documents: int
    replied_at: datetime


ImportedStep = Literal["submitted", "waiting-for-citizen", "citizen-replied", "decided"]
ImportedOutcome = Literal["accepted", "rejected", "tacit-acceptance", "tacit-rejection", "withdrawn"]


class TimelineEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    at: datetime
    event: ImportedStep
    outcome: ImportedOutcome | None = None


@register
class CaseImported(EventData):
    """A past case brought from the city's former system, so that its statistics are published from day one.

    Marked as imported by its type: no tracking code, no personal data, no steps of a Suivi procedure;
    its dated timeline only (submitted, waiting for the citizen and their reply, decided). workflow does not
    open it; stats folds it like a live case.
    """

    type: ClassVar[str] = "fr.suivi.case.imported.v1"
    name: ClassVar[str] = "imported"
    source: ClassVar[str] = "suivi/intake"

    case_id: uuid.UUID
    procedure: str
    procedure_version: int
    service: str
    channel: Channel
    # The legal deadline once the time spent waiting for the citizen is added (where the clock stops).
    legal_deadline: date | None
    facts: dict[str, str | int | float | bool | None]
    timeline: tuple[TimelineEntry, ...]


@register
class CaseRated(EventData):
    """After the decision, the citizen rated the service, once (1 to 5). A comment, if any, stays in intake."""

    type: ClassVar[str] = "fr.suivi.case.rated.v1"
    name: ClassVar[str] = "rated"
    source: ClassVar[str] = "suivi/intake"

    case_id: uuid.UUID
    rating: int = Field(ge=1, le=5)
    rated_at: datetime
    with_comment: bool


@register
class FixChecked(EventData):
    """The reporter of a street report said whether the problem is really fixed, after the city's "done"
    (asked four weeks later; see `FixCheckDue`). Once per time the report is done. "Not fixed" reopens
    the report (workflow takes the procedure's citizen transition out of its "done" step)."""

    type: ClassVar[str] = "fr.suivi.case.fix-checked.v1"
    name: ClassVar[str] = "fix-checked"
    source: ClassVar[str] = "suivi/intake"

    case_id: uuid.UUID
    fixed: bool
    checked_at: datetime
    # Which "done" of the case this answers (the workflow version of the step change into it): a report
    # reopened and done again is asked again.
    done_version: int


ErasureReason = Literal["request", "retention"]


@register
class CaseErased(EventData):
    """The case's personal data was erased in intake: the applicant's identity and contact, the form's
    non-public answers, the replies' and comments' text, the exact place and the documents (deleted from
    the object store). The case's history, its events and the statistics remain. On request (an admin,
    for the citizen's right to erasure) or at the end of the procedure's retention period.

    Readers holding anything about the citizen drop it (notify cancels the case's unsent messages); the
    city's other systems should do the same with what they copied."""

    type: ClassVar[str] = "fr.suivi.case.erased.v1"
    name: ClassVar[str] = "erased"
    source: ClassVar[str] = "suivi/intake"

    case_id: uuid.UUID
    reason: ErasureReason
    erased_at: datetime
