"""The event contract: CloudEvents 1.0 envelopes on JetStream subjects `case.<procedure>.<case_id>.<event>`.

Where to look:
- the envelope, subjects and the registry of event types: here;
- the events themselves: one module per producing service (`shared.events.intake`, ...);
- where they are emitted: the producer's `domain.py`; where they are folded: each reader's `consumers.py`.

Only the producer constructs an event; consumers only `parse` it. A published type is never renamed or
reinterpreted: a new version gets a new type string and an upcaster from the old one.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

STREAM = "CASES"
SUBJECT_ROOT = "case"
ALL_CASES = f"{SUBJECT_ROOT}.>"
SCHEMA_BASE = "https://suivi.example/schemas/events"
TOKEN = re.compile(r"^[a-z0-9-]+$")


class EventData(BaseModel):
    """The payload of one event type. Subclasses set `type` and `name` (the subject's last token)."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    type: ClassVar[str]
    name: ClassVar[str]
    source: ClassVar[str]


class Envelope(BaseModel):
    """A structured-mode CloudEvent, plus `procedure` and the W3C `traceparent` (distributed tracing)."""

    model_config = ConfigDict(frozen=True)
    specversion: Literal["1.0"] = "1.0"
    id: uuid.UUID
    source: str
    type: str
    subject: str = Field(description="the case id")
    time: datetime
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str
    procedure: str
    traceparent: str | None = None
    data: dict[str, Any]

    @property
    def case_id(self) -> uuid.UUID:
        return uuid.UUID(self.subject)


class UnknownEvent(ValueError):
    """A message whose type this code base does not know (e.g. from a newer producer)."""

    def __init__(self, message: str, *, envelope: Envelope | None = None) -> None:
        super().__init__(message)
        # The envelope is valid: a reader may still move its position or a case's version past it.
        self.envelope = envelope


class MalformedEvent(ValueError):
    """A message that is not a valid envelope or whose data does not match its declared type."""


_REGISTRY: dict[str, type[EventData]] = {}
_E = TypeVar("_E", bound=type[EventData])
_UPCASTERS: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {}


def register(cls: _E) -> _E:
    """Class decorator: make an event type known to `parse`."""
    if cls.type in _REGISTRY:
        raise ValueError(f"event type {cls.type} is registered twice")
    _REGISTRY[cls.type] = cls
    return cls


def register_upcaster(
    old_type: str, new_type: str, upcast: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    """Declare how the data of `old_type` becomes the data of `new_type`."""
    _UPCASTERS[old_type] = (new_type, upcast)


def event_types() -> dict[str, type[EventData]]:
    return dict(_REGISTRY)


def subjects_of(*events: type[EventData]) -> tuple[str, ...]:
    """The subject filters that match every event of these types, whatever the procedure and case."""
    return tuple(f"{SUBJECT_ROOT}.*.*.{event.name}" for event in events)


def subject_for(*, procedure: str, case_id: uuid.UUID, event: type[EventData] | EventData) -> str:
    if not TOKEN.match(procedure):
        raise ValueError(f"procedure code {procedure!r} is not NATS-token safe (lowercase, digits, '-')")
    return f"{SUBJECT_ROOT}.{procedure}.{case_id}.{event.name}"


def make_envelope(
    data: EventData,
    *,
    case_id: uuid.UUID,
    procedure: str,
    traceparent: str | None = None,
    event_id: uuid.UUID | None = None,
    at: datetime | None = None,
) -> Envelope:
    return Envelope(
        id=event_id or uuid.uuid4(),
        source=data.source,
        type=data.type,
        subject=str(case_id),
        time=at or datetime.now(UTC),
        dataschema=f"{SCHEMA_BASE}/{data.type}.json",
        procedure=procedure,
        traceparent=traceparent,
        data=data.model_dump(mode="json"),
    )


def parse(body: bytes | str) -> tuple[Envelope, EventData]:
    """Parse a message body into its envelope and typed data, upcasting old versions."""
    try:
        envelope = Envelope.model_validate_json(body)
    except ValidationError as exc:
        raise MalformedEvent(f"not a Suivi event envelope: {exc.errors()[0]['msg']}") from exc
    type_, payload = envelope.type, envelope.data
    while type_ in _UPCASTERS:
        type_, upcast = _UPCASTERS[type_][0], _UPCASTERS[type_][1]
        payload = upcast(payload)
    cls = _REGISTRY.get(type_)
    if cls is None:
        raise UnknownEvent(f"unknown event type {envelope.type}", envelope=envelope)
    try:
        data = cls.model_validate(payload)
    except ValidationError as exc:
        raise MalformedEvent(f"{envelope.type} {envelope.id} has invalid data: {exc}") from exc
    return envelope, data


def now() -> datetime:
    return datetime.now(UTC)


# Every producer's module registers its types on import; importing them here makes `parse` know them all.
from shared.events import intake, workflow  # noqa: E402, F401
