"""What a tracking code shows: the case's progress, in the reader's language, with no personal data."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field


class HistoryKind(StrEnum):
    SUBMITTED = "submitted"
    STEP_CHANGED = "step-changed"
    DEADLINE_PASSED = "deadline-passed"
    CITIZEN_REPLIED = "citizen-replied"
    # The reporter's answer to "is it really fixed?" after a street report's "done".
    FIX_CONFIRMED = "fix-confirmed"
    NOT_FIXED = "not-fixed"


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


class FixCheck(BaseModel):
    """A street report "done" by the city: is the problem really fixed? Its reporter says so on the page."""

    asked: bool = Field(description='the question was put to the reporter (some weeks after "done")')
    ask_from: datetime = Field(description='when the question is put ("done" + the procedure\'s days)')
    answer: Literal["fixed", "not-fixed"] | None = Field(description="the reporter's answer, if any")


class FollowedIn(BaseModel):
    """A report closed as a duplicate is followed in its original: where that one stands, so that its
    reporter follows it (never the original's tracking code, nor anything of its reporter)."""

    case_id: uuid.UUID = Field(description="the original's public id")
    url: str = Field(description="the original's public page")
    step: str
    label: str
    explanation: str
    since: datetime
    final: bool
    steps: list[StepOverview]
    history: list[HistoryEntry]


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
    followed_in: FollowedIn | None = Field(
        default=None,
        description="a report closed as a duplicate: the report it is followed in, and its state",
    )
    fix_check: FixCheck | None = Field(
        default=None, description='a street report "done" by the city: whether its reporter says it is fixed'
    )
    version: int = Field(
        description="1 once the case is submitted, then 1 + workflow's version of the case (2 once workflow "
        "opened it, one more per workflow event). Pass it as `min_version` to see at least that state."
    )
