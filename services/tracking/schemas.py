"""What a tracking code shows: the case's progress, in the reader's language, with no personal data."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class HistoryKind(StrEnum):
    SUBMITTED = "submitted"
    STEP_CHANGED = "step-changed"
    DEADLINE_PASSED = "deadline-passed"
    CITIZEN_REPLIED = "citizen-replied"


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
    awaiting_reply: bool = Field(
        description="the city hall asked the citizen for something they answer with "
        "`POST /v1/track/{code}/replies` on intake (a message and links to documents)"
    )


class HistoryEntry(BaseModel):
    kind: HistoryKind
    step: str = Field(description="the step the case was in (moved to, for `submitted` and `step-changed`)")
    label: str
    at: datetime


class StepOverview(BaseModel):
    """A step of the procedure, and where the case stands with respect to it."""

    step: str
    label: str
    explanation: str
    expected_days: float | None = Field(
        description="how long the step usually takes: measured on recent cases when `measured`, otherwise "
        "what the procedure announces"
    )
    measured: bool = False
    state: str  # done, current, upcoming


class Forecast(BaseModel):
    """When the case will likely be decided, from similar recent cases (stats' figures)."""

    available: bool
    likely_from: date | None = Field(default=None, description="p50 of similar recent cases")
    likely_to: date | None = Field(default=None, description="p90 of similar recent cases")
    based_on: int | None = Field(default=None, description="how many similar cases it is computed from")
    explanation: str = Field(description="how it is computed, or why there is none")


class Clocks(BaseModel):
    elapsed_days: int
    legal_deadline: date | None = Field(
        description="when the city hall must have answered; it moves on when a paused clock starts again"
    )
    clock_paused: bool = Field(
        description="the legal clock is on hold while the city hall waits for the citizen's answer"
    )
    days_left: int | None = Field(description="none once the case is decided, or while the clock is paused")


class TrackingView(BaseModel):
    tracking_code: str
    language: str
    procedure: ProcedureRef
    submitted_at: datetime
    status: Status
    history: list[HistoryEntry]
    steps: list[StepOverview]
    clocks: Clocks
    forecast: Forecast | None = Field(default=None, description="none once the case is decided")
    version: int = Field(
        description="1 once the case is submitted, then 1 + workflow's version of the case (2 once workflow "
        "opened it, one more per workflow event). Pass it as `min_version` to see at least that state."
    )
