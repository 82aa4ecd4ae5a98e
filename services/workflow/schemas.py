"""HTTP models of workflow."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ActionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: str = Field(min_length=1, max_length=60, examples=["take", "start-check", "accept"])
    expected_version: int = Field(ge=1, description="the case version you saw; 409 if it moved since")
    comment: str | None = Field(default=None, max_length=4000)
    reason: str | None = Field(default=None, max_length=4000, description="required to reject")
    assignee: str | None = Field(default=None, max_length=200, description="with `assign`: the agent id")
    duplicate_of: uuid.UUID | None = Field(
        default=None,
        description="with an action into the step `duplicate` (a street report): the case it duplicates, "
        "another open case of the same procedure; its reporter then follows that one",
    )


class ActionPublic(BaseModel):
    case_id: uuid.UUID
    action: str
    step: str
    version: int
    outcome: str | None
    assignee: str | None


class QueueItem(BaseModel):
    case_id: uuid.UUID
    procedure: str
    procedure_version: int
    service: str
    step: str
    step_label: str
    assignee: str | None
    submitted_at: datetime
    legal_deadline: date | None
    days_left: int | None
    clock_paused: bool
    at_risk: bool
    version: int


class QueuePage(BaseModel):
    total: int
    page: int
    page_size: int
    items: list[QueueItem]


class HistoryItem(BaseModel):
    version: int
    type: str
    at: datetime
    by: str | None
    data: dict[str, Any]
    comment: str | None
    reason: str | None


class Applicant(BaseModel):
    name: str
    email: str | None
    phone: str | None
    language: str


class FormAnswer(BaseModel):
    """One field of the form as the citizen filled it, labelled in the agent's language."""

    name: str
    label: str
    value: Any = Field(description="as submitted (null when an optional field was left empty)")
    value_label: str | None = Field(default=None, description="for a choice: the chosen option's label")


class DocumentLink(BaseModel):
    """A file the citizen sent, and where an agent of the case's service downloads it (each download is
    logged as a read of personal data)."""

    document_id: str
    filename: str
    content_type: str = Field(description="read from the file's content when it was received")
    size: int = Field(description="in bytes")
    received_at: datetime
    url: str = Field(description="`GET` it with the agent's token: the file, as an attachment")


class FileAnswer(BaseModel):
    """A file field of the form, labelled in the agent's language, with the files sent for it."""

    name: str
    label: str
    files: list[DocumentLink] = Field(description="in the order they were sent; empty if none was")


class CitizenReply(BaseModel):
    reply_id: uuid.UUID
    message: str
    documents: list[str] = Field(description="links to the documents, as the citizen gave them")
    received_at: datetime
    files: list[DocumentLink] = Field(default_factory=list, description="the files sent with the reply")


class CaseDocument(BaseModel):
    """A file's record, as intake's internal API gives it (its bytes are fetched only to be downloaded)."""

    document_id: str
    field: str
    reply_id: uuid.UUID | None
    filename: str
    content_type: str
    size: int
    created_at: datetime


class CitizenRating(BaseModel):
    """How the citizen rated the service after the decision; the comment is theirs, kept in intake."""

    rating: int
    comment: str | None
    rated_at: datetime


class CaseFile(BaseModel):
    """What intake holds about a case and answers on its internal API (the part workflow shows)."""

    data: dict[str, Any]
    applicant: Applicant | None
    replies: list[CitizenReply]
    rating: CitizenRating | None = None
    documents: list[CaseDocument] = Field(default_factory=list)
    erased_at: datetime | None = None


class CitizenNotification(BaseModel):
    """A message notify sent the citizen (or could not), from notify's internal API."""

    kind: str = Field(description="received, action-needed, decided, tacit-decision")
    channel: str | None = Field(description="email or sms; none when no message was made")
    status: str = Field(
        description="created, sending, sent, delivered, temporary-failure, permanent-failure; "
        "pending, opted-out, no-contact or erased when no message was made"
    )
    reason: str | None
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None


class NearbyReport(BaseModel):
    """An open report of the same category near a street report (from intake): a candidate original, to
    name in `duplicate_of` with `mark-duplicate`."""

    case_id: uuid.UUID
    category: str
    category_label: str
    step: str
    state_label: str
    submitted_on: date
    distance_m: int = Field(description="from this report, rounded to 10 m")
    district: str | None
    district_label: str | None


class CaseDetail(BaseModel):
    case_id: uuid.UUID
    procedure: str
    procedure_version: int
    service: str
    step: str
    step_label: str
    version: int
    assignee: str | None
    legal_deadline: date | None
    clock_paused: bool
    outcome: str | None
    allowed_actions: list[str]
    history: list[HistoryItem]
    # What the citizen gave, read from intake at each request and never stored in workflow.
    applicant: Applicant | None
    form: list[FormAnswer] = Field(
        description="every field of the procedure's form, in its order, but its file fields (`files`)"
    )
    files: list[FileAnswer] = Field(
        default_factory=list, description="the form's file fields, in its order, each with its files"
    )
    replies: list[CitizenReply] = Field(description="the citizen's answers to requests, oldest first")
    rating: CitizenRating | None = Field(default=None, description="the citizen's rating after the decision")
    submission_unavailable: str | None = Field(
        default=None, description="why the applicant, form and replies are not shown (intake not answering)"
    )
    applicant_unavailable: str | None = Field(default=None, description="deprecated: submission_unavailable")
    personal_data_erased_at: datetime | None = Field(
        default=None,
        description="when intake erased the case's personal data (on request, or at the end of the "
        "procedure's retention period): no applicant, texts or files any more, the form's public facts only",
    )
    notifications: list[CitizenNotification] = Field(
        default_factory=list, description="what the citizen was told of, and how each message went"
    )
    notifications_stopped_at: datetime | None = Field(
        default=None, description="when the citizen stopped this case's messages"
    )
    notifications_unavailable: str | None = Field(
        default=None, description="why the notifications are not shown (notify not answering)"
    )
    nearby: list[NearbyReport] | None = Field(
        default=None,
        description="a street report: the open reports of its category within 50 m, nearest first (null "
        "for other procedures, or when intake is not answering: `nearby_unavailable` says so)",
    )
    nearby_unavailable: str | None = Field(
        default=None, description="why `nearby` is not shown (intake not answering)"
    )
