"""What a tracking code shows: the case's progress, in the reader's language, with no personal data."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel


class ProcedureRef(BaseModel):
    code: str
    version: int
    title: str


class Status(BaseModel):
    step: str
    label: str
    explanation: str
    since: datetime
    turn: str
    turn_label: str
    final: bool
    outcome: str | None


class HistoryEntry(BaseModel):
    step: str
    label: str
    at: datetime


class StepOverview(BaseModel):
    """A step of the procedure, and where the case stands with respect to it."""

    step: str
    label: str
    explanation: str
    expected_days: int | None
    state: str  # done, current, upcoming


class Clocks(BaseModel):
    elapsed_days: int
    legal_deadline: date | None
    days_left: int | None


class TrackingView(BaseModel):
    tracking_code: str
    language: str
    procedure: ProcedureRef
    submitted_at: datetime
    status: Status
    history: list[HistoryEntry]
    steps: list[StepOverview]
    clocks: Clocks
    version: int
