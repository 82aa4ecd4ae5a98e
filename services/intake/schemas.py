"""HTTP models of intake."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.http import StoredStr

Channel = Literal["web", "counter", "phone", "mail"]
# How the citizen wants to hear of their case's changes (notify).
NotifyBy = Literal["email", "sms"]
MAX_REPLY_LENGTH = 4000
MAX_REPLY_DOCUMENTS = 20


class ApplicantCreate(BaseModel):
    """Who applies. Personal data: it stays in intake and never goes on the bus."""

    model_config = ConfigDict(extra="forbid")
    name: StoredStr = Field(min_length=1, max_length=200)
    email: StoredStr | None = Field(default=None, max_length=254)
    phone: StoredStr | None = Field(default=None, max_length=40)
    language: StoredStr = Field(default="fr", max_length=10)
    notify_by: list[NotifyBy] | None = Field(
        default=None,
        max_length=2,
        description="how to tell the applicant of changes: e-mail, SMS, both, or [] for nothing; "
        "by default e-mail if an address is given, else SMS",
    )


class CaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    procedure: StoredStr = Field(max_length=60, examples=["permis-construire"])
    # Checked field by field against the procedure's definition in `domain.check_data`.
    data: dict[str, Any]
    applicant: ApplicantCreate
    channel: Channel = "web"


class CasePublic(BaseModel):
    case_id: uuid.UUID
    tracking_code: str
    tracking_url: str
    procedure: str
    procedure_version: int
    submitted_at: datetime
    legal_deadline: date | None
    status: str = Field(description="the citizen-facing label of the first step")
    # Read-your-writes: tracking can be asked to wait until it has folded at least this version.
    version: int


class ReplyCreate(BaseModel):
    """A citizen's answer to a request. Personal data: it stays in intake and never goes on the bus."""

    model_config = ConfigDict(extra="forbid")
    # In the body, not the URL: URLs end up in proxies' logs, and the code is a bearer secret.
    tracking_code: StoredStr = Field(
        max_length=64, description="the tracking code, dashes optional, any case"
    )
    message: StoredStr = Field(max_length=MAX_REPLY_LENGTH, description="what the citizen says; not blank")
    documents: list[StoredStr] = Field(
        default_factory=list,
        description=f"links to the documents (https), at most {MAX_REPLY_DOCUMENTS}; files themselves go "
        "in a multipart/form-data request, as parts named `documents`",
        # Checked in `domain.check_reply`, where the message can be in the citizen's language.
        json_schema_extra={"maxItems": MAX_REPLY_DOCUMENTS, "items": {"type": "string", "format": "uri"}},
    )


class ReplyPublic(BaseModel):
    reply_id: uuid.UUID
    received_at: datetime


class ChoicePublic(BaseModel):
    value: str
    label: str


class FieldPublic(BaseModel):
    name: str
    type: str
    label: str
    help: str | None
    required: bool
    min_length: int | None
    max_length: int | None
    minimum: float | None
    maximum: float | None
    pattern: str | None
    pattern_hint: str | None
    choices: list[ChoicePublic] = Field(
        description="a choice field's values; for a location field, the districts: send one as `district`"
        " beside the address or the point (only the district is published)"
    )
    accept: list[str] = Field(
        default_factory=list,
        description="a file field's types (application/pdf, image/jpeg, image/png), read from the content",
    )
    max_bytes: int | None = Field(default=None, description="a file field's largest file, in bytes")
    max_files: int | None = Field(default=None, description="how many files a file field takes")


class StepPublic(BaseModel):
    code: str
    label: str
    explanation: str
    turn: str
    expected_days: int | None
    final: bool


class LegalDeadlinePublic(BaseModel):
    months: int
    days: int
    silence: str
    clock_stops_when_waiting_for_citizen: bool


class ProcedureSummary(BaseModel):
    code: str
    version: int
    title: str
    summary: str
    service: str
    url: str


class ProcedurePublic(ProcedureSummary):
    legal_basis: str | None
    legal_deadline: LegalDeadlinePublic | None
    fields: list[FieldPublic]
    steps: list[StepPublic]
