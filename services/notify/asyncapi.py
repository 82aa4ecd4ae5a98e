"""The AsyncAPI 3 document of the CASES stream (`GET /v1/asyncapi.json`): its subjects, the CloudEvents they
carry and how another city system reads them with a durable JetStream consumer of its own.

Generated from the event models of `shared/events/` (JSON Schema from pydantic), so it says what the
producers publish. AsyncAPI's NATS binding has no JetStream fields: the stream and the consumer recipe are
`x-` extensions of the server. Every registered event type needs an example below (a test checks them).
"""

from __future__ import annotations

import inspect
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, create_model
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from shared.bus import DUPLICATE_WINDOW_SECONDS, event_headers
from shared.events import (
    ALL_CASES,
    SCHEMA_BASE,
    STREAM,
    SUBJECT_ROOT,
    Envelope,
    EventData,
    event_types,
    make_envelope,
    subject_for,
)
from shared.events.intake import (
    CaseErased,
    CaseImported,
    CaseRated,
    CaseSubmitted,
    CitizenReplied,
    FixChecked,
    TimelineEntry,
)
from shared.events.workflow import (
    CaseAssigned,
    CaseOpened,
    DeadlineApproaching,
    DeadlinePassed,
    FixCheckDue,
    StepChanged,
)
from shared.procedures import Catalogue

router = APIRouter(prefix="/v1")

SCHEMAS = "#/components/schemas/"
CONTENT_TYPE = "application/cloudevents+json"  # structured mode: the body is the whole CloudEvent
TRACEPARENT = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"

# Examples: one plausible permit case, as its events would be published. Built here only to be shown;
# the producers build the real ones.
EXAMPLE_CASE = uuid.UUID("6f1c2a9e-4b7d-4e0a-9a51-3c8e2f7d1b40")
EXAMPLE_PROCEDURE = "permis-construire"
EXAMPLE_TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
_DEADLINE = date(2026, 5, 4)
_AGENT = "agent-3d5e9a"  # agents are named by their pseudonymous id from the identity provider


def _at(day: int, hour: int) -> datetime:
    return datetime(2026, 3, day, hour, 15, tzinfo=UTC)


_COMMON = {"case_id": EXAMPLE_CASE, "procedure": EXAMPLE_PROCEDURE, "procedure_version": 1}
EXAMPLES: tuple[EventData, ...] = (
    CaseSubmitted(
        **_COMMON,
        tracking_code_digest="9f2b6c1e0d4a7f3b8e5c2a1d6f9b0e4c7a3d8f1b5e2c9a6d0f4b7e1c3a8d5f2b",
        service="urbanisme",
        channel="web",
        language="fr",
        submitted_at=_at(2, 9),
        legal_deadline=_DEADLINE,
        first_step="received",
        facts={"district": "est", "floor_area_m2": 120},
    ),
    CaseOpened(
        **_COMMON,
        version=1,
        service="urbanisme",
        step="received",
        legal_deadline=_DEADLINE,
        opened_at=_at(2, 9),
        submitted_at=_at(2, 9),
    ),
    CaseAssigned(case_id=EXAMPLE_CASE, version=2, assignee=_AGENT, by=_AGENT, at=_at(3, 8)),
    StepChanged(
        case_id=EXAMPLE_CASE,
        version=3,
        action="request-documents",
        from_step="completeness-check",
        to_step="documents-requested",
        actor="agent",
        by=_AGENT,
        at=_at(5, 14),
        clock_paused=True,
        legal_deadline=None,
    ),
    CitizenReplied(case_id=EXAMPLE_CASE, reply_id=uuid.UUID(int=7), documents=2, replied_at=_at(9, 18)),
    DeadlineApproaching(
        case_id=EXAMPLE_CASE, version=6, legal_deadline=_DEADLINE, days_left=5, at=_at(30, 6)
    ),
    DeadlinePassed(case_id=EXAMPLE_CASE, version=7, legal_deadline=_DEADLINE, step="review", at=_at(31, 6)),
    CaseRated(case_id=EXAMPLE_CASE, rating=4, rated_at=_at(31, 19), with_comment=False),
    # A street report's last events (the example case stands in for one): "done" four weeks ago, its
    # reporter is asked whether it is really fixed, and answers.
    FixCheckDue(
        case_id=EXAMPLE_CASE, version=9, step="done", done_version=8, done_at=_at(2, 10), at=_at(30, 10)
    ),
    FixChecked(case_id=EXAMPLE_CASE, fixed=False, checked_at=_at(30, 18), done_version=8),
    # Months after the decision, the end of the procedure's retention period (or an admin, on request).
    CaseErased(case_id=EXAMPLE_CASE, reason="retention", erased_at=_at(31, 3)),
    CaseImported(
        **_COMMON,
        service="urbanisme",
        channel="counter",
        legal_deadline=date(2025, 3, 14),
        facts={"district": "nord", "floor_area_m2": 95},
        timeline=(
            TimelineEntry(at=datetime(2025, 1, 14, 10, tzinfo=UTC), event="submitted"),
            TimelineEntry(at=datetime(2025, 3, 3, 16, tzinfo=UTC), event="decided", outcome="accepted"),
        ),
    ),
)


def document(catalogue: Catalogue, *, server_url: str) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of every registered event type, on the NATS server at `server_url`."""
    events = list(event_types().values())  # in the order the producers' modules register them
    by_name: dict[str, list[type[EventData]]] = defaultdict(list)
    for event in events:  # a new version of a type is published on the same subject as the old one
        by_name[event.name].append(event)
    return {
        "asyncapi": "3.0.0",
        "id": "urn:suivi:case-events",
        "info": _info(),
        "defaultContentType": CONTENT_TYPE,
        "servers": {"nats": _server(server_url)},
        "channels": {name: _channel(name, same) for name, same in by_name.items()},
        "operations": {f"receive-{name}": _operation(name, same) for name, same in by_name.items()},
        "components": {
            "schemas": _schemas(events),
            "messages": {event.__name__: _message(event) for event in events},
            "parameters": _parameters(catalogue),
        },
    }


@router.get("/asyncapi.json", summary="The AsyncAPI 3 document of the case events on NATS JetStream")
async def asyncapi(request: Request) -> JSONResponse:
    state = request.app.state
    if getattr(state, "asyncapi", None) is None:  # the models and the catalogue are fixed for the app's life
        state.asyncapi = document(state.catalogue, server_url=state.settings.nats_url)
    return JSONResponse(state.asyncapi)


def _info() -> dict[str, Any]:
    return {
        "title": "Suivi case events",
        "version": "1.0.0",
        "description": (
            f"Every event of every case, kept forever in the JetStream stream `{STREAM}`, on subjects "
            f"`{SUBJECT_ROOT}.<procedure>.<case_id>.<event>`. Each message is a CloudEvent 1.0 in "
            "structured mode (the JSON body is the whole event, `data` its payload) plus `procedure` and "
            "the W3C `traceparent`; its headers repeat the id, type, subject and source.\n\n"
            "No personal data travels here: names, addresses and free text stay with the services that "
            "hold them. Event types are versioned (`fr.suivi.case.submitted.v1`): a change makes a new "
            "type, published beside or after the old one, never a new meaning for an old one; ignore the "
            "types you do not know.\n\n"
            "Delivery is at least once: a message is redelivered until it is acknowledged, so make your "
            "effect idempotent on the CloudEvent `id`. Read the stream with a durable consumer of your own "
            "(see the server's `x-jetstream-consumer`), or ask for signed webhooks (`/v1/subscriptions`)."
        ),
    }


def _server(server_url: str) -> dict[str, Any]:
    scheme, separator, rest = server_url.partition("://")
    if not separator:  # `host:port` alone
        scheme, rest = "nats", server_url
    host = rest.split("/")[0].rsplit("@", 1)[-1]  # never publish the credentials a URL may carry
    return {
        "host": host,
        "protocol": "nats",
        "title": "NATS JetStream",
        "description": "The city's NATS cluster, with JetStream." + (" TLS." if scheme == "tls" else ""),
        "x-jetstream-stream": {
            "name": STREAM,
            "subjects": [ALL_CASES],
            "storage": "file",
            "retention": "limits",
            "max_age": 0,
            "kept": "forever: no limit of age, size or count",
            "duplicate_window_seconds": DUPLICATE_WINDOW_SECONDS,
            "description": "Nats-Msg-Id is the event id: a second publish of an event within the "
            "duplicate window is dropped.",
        },
        "x-jetstream-consumer": {
            "description": (
                "How another system reads the stream: one durable pull consumer per system, shared by its "
                "replicas; fetch, apply, then ack once your effect is durable. A message not acked within "
                "ack_wait comes again (the same `id`), possibly after later ones: to keep the order of a "
                "case, use max_ack_pending 1 or compare workflow's `data.version`."
            ),
            "durable_name": "<your system, e.g. sig-urbanisme>",
            "filter_subject_examples": {
                "one procedure": f"{SUBJECT_ROOT}.{EXAMPLE_PROCEDURE}.>",
                "one case": f"{SUBJECT_ROOT}.*.{EXAMPLE_CASE}.>",
                "one kind of event": f"{SUBJECT_ROOT}.*.*.{StepChanged.name}",
            },
            "deliver_policy": "all",
            "ack_policy": "explicit",
            "ack_wait_seconds": 30,
            "max_deliver": -1,
        },
    }


def _channel(name: str, events: list[type[EventData]]) -> dict[str, Any]:
    return {
        "address": f"{SUBJECT_ROOT}.{{procedure}}.{{case_id}}.{name}",
        "title": f"case events: {name}",
        "summary": _summary(events[-1]),
        "messages": {e.__name__: {"$ref": f"#/components/messages/{e.__name__}"} for e in events},
        "parameters": {
            "procedure": {"$ref": "#/components/parameters/procedure"},
            "case_id": {"$ref": "#/components/parameters/case_id"},
        },
    }


def _operation(name: str, events: list[type[EventData]]) -> dict[str, Any]:
    return {
        "action": "receive",
        "channel": {"$ref": f"#/channels/{name}"},
        "messages": [{"$ref": f"#/channels/{name}/messages/{e.__name__}"} for e in events],
        "summary": f"A city system receives the `{name}` events from its own durable consumer.",
        "bindings": {"nats": {"bindingVersion": "0.1.0"}},
    }


def _parameters(catalogue: Catalogue) -> dict[str, Any]:
    return {
        "procedure": {
            "description": "The procedure's code (`procedures/<code>/`); `*` in a filter for all of them.",
            "enum": catalogue.codes(),
            "examples": [EXAMPLE_PROCEDURE],
            "location": "$message.payload#/procedure",
        },
        "case_id": {
            "description": "The case id, a UUID; `*` in a filter for every case.",
            "examples": [str(EXAMPLE_CASE)],
            "location": "$message.payload#/subject",
        },
    }


def _envelope_model(event: type[EventData]) -> type[Envelope]:
    """The CloudEvent of one event type: the envelope with `data` typed and its type and source fixed."""
    return create_model(
        f"{event.__name__}Event",
        __base__=Envelope,
        __doc__=f"The CloudEvent `{event.type}`. {_summary(event)}",
        type=(str, Field(json_schema_extra={"const": event.type})),
        source=(str, Field(json_schema_extra={"const": event.source})),
        dataschema=(str, Field(json_schema_extra={"const": f"{SCHEMA_BASE}/{event.type}.json"})),
        data=(event, ...),
    )


def _schemas(events: list[type[EventData]]) -> dict[str, Any]:
    """Every schema the payloads need, under components.schemas, with the $refs pointing there."""
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (_envelope_model(event), "serialization") for event in events
    ]
    _, top = models_json_schema(models, ref_template=SCHEMAS + "{model}")
    schemas: dict[str, Any] = top["$defs"]
    return schemas


def _headers(event: type[EventData]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["Nats-Msg-Id", "ce-type", "ce-subject", "ce-source"],
        "properties": {
            "Nats-Msg-Id": {"type": "string", "format": "uuid", "description": "The event id."},
            "ce-type": {"type": "string", "const": event.type},
            "ce-subject": {"type": "string", "format": "uuid", "description": "The case id."},
            "ce-source": {"type": "string", "const": event.source},
            "traceparent": {
                "type": "string",
                "pattern": TRACEPARENT,
                "description": "W3C trace context of the request that caused the event.",
            },
        },
    }


def _message(event: type[EventData]) -> dict[str, Any]:
    return {
        "name": event.type,
        "title": event.__name__,
        "summary": _summary(event),
        "description": inspect.cleandoc(event.__doc__ or ""),
        "contentType": CONTENT_TYPE,
        "headers": _headers(event),
        "payload": {"$ref": f"{SCHEMAS}{event.__name__}Event"},
        "correlationId": {"description": "The case id.", "location": "$message.payload#/subject"},
        "tags": [{"name": event.source.removeprefix("suivi/")}],
        "examples": [_example(event)],
    }


def _example(event: type[EventData]) -> dict[str, Any]:
    found = [example for example in EXAMPLES if example.type == event.type]
    if not found:
        raise LookupError(f"no example of {event.type}: add one to EXAMPLES in services/notify/asyncapi.py")
    data = found[0]
    envelope = make_envelope(
        data,
        case_id=EXAMPLE_CASE,
        procedure=EXAMPLE_PROCEDURE,
        traceparent=EXAMPLE_TRACEPARENT,
        event_id=uuid.uuid5(EXAMPLE_CASE, event.type),
        at=next((v for v in dict(data).values() if isinstance(v, datetime)), _at(2, 9)),
    )
    return {
        "name": event.name,
        "summary": f"on {subject_for(procedure=EXAMPLE_PROCEDURE, case_id=EXAMPLE_CASE, event=event)}",
        "headers": event_headers(envelope, traceparent=EXAMPLE_TRACEPARENT),
        "payload": envelope.model_dump(mode="json"),
    }


def _summary(event: type[EventData]) -> str:
    return inspect.cleandoc(event.__doc__ or event.__name__).split("\n")[0]
