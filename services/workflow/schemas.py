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
    applicant: Applicant | None
    applicant_unavailable: str | None = None
