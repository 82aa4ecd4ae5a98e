"""Events produced by intake. Emitted in `services/intake/domain.py`.

No personal data here: the applicant and non-public form fields stay in intake's database.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import ClassVar, Literal

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
