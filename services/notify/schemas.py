"""HTTP models of notify."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.notify.webhook_rules import Outcome, SubscriptionState
from shared.http import StoredStr

# Webhook subscriptions

FilterValue = Annotated[StoredStr, Field(min_length=1, max_length=200)]


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: StoredStr = Field(
        min_length=1,
        max_length=2000,
        description="where deliveries are POSTed: http(s), on a public address",
        examples=["https://sig.ville.example/hooks/suivi"],
    )
    description: StoredStr | None = Field(default=None, max_length=500, examples=["SIG: travaux de voirie"])
    procedures: list[FilterValue] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="only these procedures' events (codes of the catalogue); absent: every procedure",
        examples=[["signalement-voirie"]],
    )
    event_types: list[FilterValue] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="only these CloudEvents types; absent: every type",
        examples=[["fr.suivi.case.submitted.v1", "fr.suivi.case.step-changed.v1"]],
    )
    services: list[FilterValue] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="only the events of cases of these city services; absent: every service",
        examples=[["voirie"]],
    )


class SubscriptionPublic(BaseModel):
    id: uuid.UUID
    url: str
    description: str | None
    procedures: list[str] | None
    event_types: list[str] | None
    services: list[str] | None
    state: SubscriptionState = Field(
        description="active; paused (by an admin, or retries used up: deliveries are kept, sent on resume); "
        "disabled (the target answered 410 Gone: nothing more is queued)"
    )
    state_reason: str | None = Field(description="why it is paused or disabled")
    state_changed_at: datetime
    created_at: datetime
    created_by: str
    pending: int = Field(description="deliveries waiting to go (or to be tried again)")
    failed: int = Field(description="deliveries whose retries ran out; resume sends them again")
    previous_secret_until: datetime | None = Field(
        description="after a rotation: until when the previous secret signs too"
    )


class SubscriptionCreated(SubscriptionPublic):
    secret: str = Field(
        description="the signing secret (Standard Webhooks, `whsec_` + base64): shown this once",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


class AttemptPublic(BaseModel):
    at: datetime
    event_id: uuid.UUID = Field(description="the `webhook-id` of the delivery")
    event_type: str
    case_id: uuid.UUID
    stream_seq: int = Field(description="the event's position in the CASES stream (for a replay)")
    status_code: int | None = Field(description="the target's answer; null when there was none")
    duration_ms: int
    error: str | None
    outcome: Outcome


class SubscriptionDetail(SubscriptionPublic):
    last_attempts: list[AttemptPublic] = Field(description="the latest tries, newest first")


class ReplayCreate(BaseModel):
    """Exactly one of the two."""

    model_config = ConfigDict(extra="forbid")
    from_stream_seq: int | None = Field(
        default=None, ge=1, le=2**63 - 1, description="re-send the events from this stream position on"
    )
    from_time: AwareDatetime | None = Field(
        default=None, description="re-send the events that happened at or after this time"
    )


class ReplayPublic(BaseModel):
    id: uuid.UUID
    queued: int = Field(description="how many events were queued again")
    state: SubscriptionState


class SecretRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grace_seconds: int = Field(
        default=24 * 3600,
        ge=0,
        le=7 * 24 * 3600,
        description="how long the previous secret keeps signing beside the new one",
    )


class SecretPublic(BaseModel):
    id: uuid.UUID
    secret: str = Field(description="the new signing secret: shown this once")
    previous_secret_until: datetime
