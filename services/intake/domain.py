"""intake's rules: is a submission (or a citizen's reply) valid, and what does recording it write.

Pure functions, no I/O. Errors are lists of `{field, message}` in the applicant's language, so a
form can show each one next to its field.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from services.intake.schemas import MAX_REPLY_DOCUMENTS, ApplicantCreate, CaseCreate, ReplyCreate
from shared import tracking_code
from shared.events import make_envelope, subject_for
from shared.events.intake import CaseSubmitted, CitizenReplied
from shared.eventstore import NewEvent
from shared.http import unstorable
from shared.i18n import languages, translate
from shared.places import Districts, Point, cell_of
from shared.procedures import CITY_TIMEZONE, FieldType, FormField, Procedure, type_names

FieldError = dict[str, str]


class InvalidField(ValueError):
    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key, self.params = key, params


def _string(f: FormField, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidField("field.type_string")
    text: str = value.strip()
    if f.min_length is not None and len(text) < f.min_length:
        raise InvalidField("field.too_short", min=f.min_length)
    if f.max_length is not None and len(text) > f.max_length:
        raise InvalidField("field.too_long", max=f.max_length)
    return text


def _number(f: FormField, value: Any, *, integer: bool) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidField("field.type_integer" if integer else "field.type_number")
    if integer and not float(value).is_integer():
        raise InvalidField("field.type_integer")
    if f.minimum is not None and value < f.minimum:
        raise InvalidField("field.too_small", min=f.minimum)
    if f.maximum is not None and value > f.maximum:
        raise InvalidField("field.too_large", max=f.maximum)
    return int(value) if integer else value


def _boolean(_: FormField, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidField("field.type_boolean")
    return value


def _date(f: FormField, value: Any) -> str:
    try:
        parsed = date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise InvalidField("field.date")
    if f.not_in_future and parsed > datetime.now(UTC).date():
        raise InvalidField("field.date_future")
    return parsed.isoformat()


def _choice(f: FormField, value: Any) -> str:
    allowed = [c.value for c in f.choices]
    if value not in allowed:
        raise InvalidField("field.choice", choices=", ".join(allowed))
    return str(value)


def normalize_email(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidField("field.type_string")
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        # email_validator explains in English only: the citizen gets the example in their language.
        raise InvalidField("field.email") from exc


def normalize_phone(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidField("field.type_string")
    try:
        number = phonenumbers.parse(value, "FR")
    except phonenumbers.NumberParseException as exc:
        raise InvalidField("field.phone") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidField("field.phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_url(value: Any) -> str:
    parts = urlsplit(value) if isinstance(value, str) and len(value) <= 2000 else None
    if parts is None or parts.scheme != "https" or not parts.hostname:
        raise InvalidField("field.url")
    return str(value)


def _location(f: FormField, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidField("field.location")
    return _place(value) | _district(f, value.get("district"))


def _located(f: FormField, value: Any, districts: Districts) -> dict[str, Any]:
    """A place whose district the city's polygons give: a point (sent, or found from the address by
    `places.locate` before this check) inside the city; its district and public cell go with it."""
    if not isinstance(value, dict):
        raise InvalidField("field.location")
    place = _place(value)
    if "latitude" not in place:
        # An address the geocoder could not place was already reported by `places.locate`.
        raise InvalidField("field.location_not_found")
    point = Point(place["latitude"], place["longitude"])
    district = districts.containing(point)
    if district is None:
        raise InvalidField("field.location_outside")
    return place | {"district": district.code, "cell": cell_of(point)}


def _place(value: dict[str, Any]) -> dict[str, Any]:
    address, lat, lon = value.get("address"), value.get("latitude"), value.get("longitude")
    place: dict[str, Any] = {}
    if address is not None:
        if not isinstance(address, str) or not 3 <= len(address.strip()) <= 300:
            raise InvalidField("field.location")
        place["address"] = address.strip()
    if lat is not None or lon is not None:
        for name, v, limit in (("latitude", lat, 90), ("longitude", lon, 180)):
            if isinstance(v, bool) or not isinstance(v, int | float) or not -limit <= v <= limit:
                raise InvalidField(f"field.{name}")
        place |= {"latitude": float(lat), "longitude": float(lon)}  # type: ignore[arg-type]
    if not place:
        raise InvalidField("field.location")
    return place


def _district(f: FormField, district: Any) -> dict[str, str]:
    """The district of a location whose definition lists districts (`choices`): one of them, required."""
    if not f.choices:
        return {}
    allowed = [c.value for c in f.choices]
    if district not in allowed:
        raise InvalidField("field.location_district", choices=", ".join(allowed))
    return {"district": str(district)}


Fact = str | int | float | bool | None


def public_fact(f: FormField, value: Any) -> Fact:
    """What the bus and the statistics may know of a public field's value: the value itself, or only the
    district of a location (`public: district`), never the address or the point."""
    if f.publishes_district:
        return value.get("district") if isinstance(value, dict) else None
    return value  # type: ignore[no-any-return]


def public_facts(procedure: Procedure, data: dict[str, Any]) -> dict[str, Fact]:
    """The public facts of a case: its public fields' values; for a place found in the city's districts,
    `district` and `cell` (its H3 cell, about 100 m across), never the point or the address."""
    facts: dict[str, Fact] = {}
    for f in procedure.fields:
        if not f.public:
            continue
        value = data.get(f.name)
        if f.publishes_district and procedure.districts is not None:
            place = value if isinstance(value, dict) else {}
            facts["district"] = place.get("district")
            if not procedure.sensitive(data):  # a report that could point at a person: its district only
                facts["cell"] = place.get("cell")
        else:
            facts[f.name] = public_fact(f, value)
    return facts


_CHECKS: dict[FieldType, Callable[[FormField, Any], Any]] = {
    FieldType.STRING: _string,
    FieldType.TEXT: _string,
    FieldType.INTEGER: lambda f, v: _number(f, v, integer=True),
    FieldType.NUMBER: lambda f, v: _number(f, v, integer=False),
    FieldType.BOOLEAN: _boolean,
    FieldType.DATE: _date,
    FieldType.CHOICE: _choice,
    FieldType.EMAIL: lambda _, v: normalize_email(v),
    FieldType.PHONE: lambda _, v: normalize_phone(v),
    FieldType.URL: lambda _, v: normalize_url(v),
    FieldType.LOCATION: _location,
}


def _check_field(f: FormField, value: Any, districts: Districts | None = None) -> Any:
    if (key := unstorable(value)) is not None:
        raise InvalidField(key)
    if f.publishes_district and districts is not None:
        return _located(f, value, districts)
    value = _CHECKS[f.type](f, value)
    if f.pattern and isinstance(value, str) and not re.fullmatch(f.pattern, value):
        raise InvalidField("field.pattern", hint="")
    return value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def check_data(
    procedure: Procedure,
    data: dict[str, Any],
    lang: str,
    *,
    documents: Mapping[str, Sequence[str]] | None = None,
) -> tuple[dict[str, Any], list[FieldError]]:
    """The cleaned form data, and every problem found (not just the first). A file field's value is
    the ids of the files checked for it (`documents`, by field), never something sent in `data`."""
    clean: dict[str, Any] = {}
    errors: list[FieldError] = []
    expected = ", ".join(f.name for f in procedure.fields)
    for name in data:
        if procedure.field(name) is None:
            errors.append(
                {
                    "field": f"data.{name}",
                    "message": translate("field.unknown", lang, procedure=procedure.code, expected=expected),
                }
            )
    for f in procedure.fields:
        if f.type is FieldType.FILE:
            errors += _file_field(f, data, (documents or {}).get(f.name, ()), clean, lang)
            continue
        value = data.get(f.name)
        if _missing(value):
            if f.required:
                errors.append({"field": f"data.{f.name}", "message": translate("field.required", lang)})
            continue
        try:
            clean[f.name] = _check_field(f, value, procedure.districts)
        except InvalidField as exc:
            params = dict(exc.params)
            if exc.key == "field.pattern" and f.pattern_hint:
                params["hint"] = f.pattern_hint.in_(lang)
            errors.append({"field": f"data.{f.name}", "message": translate(exc.key, lang, **params)})
    return clean, errors


def _file_field(
    f: FormField, data: dict[str, Any], ids: Sequence[str], clean: dict[str, Any], lang: str
) -> list[FieldError]:
    where = f"data.{f.name}"
    if f.name in data:
        return [{"field": where, "message": translate("field.file_in_data", lang, name=f.name)}]
    if ids:
        clean[f.name] = list(ids)
    elif f.required:
        message = translate("field.file_required", lang, accepted=type_names(f.accept))
        return [{"field": where, "message": message}]
    return []


def check_applicant(applicant: ApplicantCreate, lang: str) -> tuple[ApplicantCreate, list[FieldError]]:
    errors: list[FieldError] = []
    updates: dict[str, Any] = {"name": applicant.name.strip()}
    if not updates["name"]:
        errors.append({"field": "applicant.name", "message": translate("field.required", lang)})
    for name, normalize in (("email", normalize_email), ("phone", normalize_phone)):
        value = getattr(applicant, name)
        if _missing(value):
            updates[name] = None
            continue
        try:
            updates[name] = normalize(value)
        except InvalidField as exc:
            errors.append({"field": f"applicant.{name}", "message": translate(exc.key, lang, **exc.params)})
    if _missing(applicant.email) and _missing(applicant.phone):
        errors.append({"field": "applicant", "message": translate("field.applicant_contact", lang)})
    notify_by = _notify_by(applicant, updates)
    updates["notify_by"] = notify_by
    for channel, contact in (("email", "email"), ("sms", "phone")):
        if channel in notify_by and updates.get(contact) is None:
            errors.append(
                {"field": f"applicant.{contact}", "message": translate(f"field.notify_by_{channel}", lang)}
            )
    if applicant.language not in languages():
        errors.append(
            {
                "field": "applicant.language",
                "message": translate("field.language", lang, choices=", ".join(languages())),
            }
        )
    return applicant.model_copy(update=updates), errors


def _notify_by(applicant: ApplicantCreate, normalized: dict[str, Any]) -> list[str]:
    """The channels chosen, once each; by default e-mail where there is an address, else SMS."""
    if applicant.notify_by is not None:
        return sorted(set(applicant.notify_by))
    if normalized.get("email"):
        return ["email"]
    return ["sms"] if normalized.get("phone") else []


@dataclass(frozen=True)
class Submission:
    """A valid submission, ready to be recorded."""

    case_id: uuid.UUID
    tracking_code: str
    procedure: Procedure
    request: CaseCreate
    data: dict[str, Any]
    submitted_at: datetime
    legal_deadline: date | None

    @cached_property
    def event(self) -> CaseSubmitted:
        p = self.procedure
        return CaseSubmitted(
            case_id=self.case_id,
            tracking_code_digest=tracking_code.digest(self.tracking_code),
            procedure=p.code,
            procedure_version=p.version,
            service=p.service_for(self.data),
            channel=self.request.channel,
            language=self.request.applicant.language,
            submitted_at=self.submitted_at,
            legal_deadline=self.legal_deadline,
            first_step=p.first_step.code,
            facts=public_facts(p, self.data),
        )


def submit(*, procedure: Procedure, request: CaseCreate, data: dict[str, Any]) -> Submission:
    now = datetime.now(UTC)
    deadline = (
        procedure.legal_deadline.due(now.astimezone(CITY_TIMEZONE).date())
        if procedure.legal_deadline
        else None
    )
    return Submission(
        case_id=uuid.uuid4(),
        tracking_code=tracking_code.generate(),
        procedure=procedure,
        request=request,
        data=data,
        submitted_at=now,
        legal_deadline=deadline,
    )


def first_events(submission: Submission, *, traceparent: str | None) -> list[NewEvent]:
    """The events a submission records: the case exists, in its procedure's first step."""
    event = submission.event
    envelope = make_envelope(
        event,
        case_id=submission.case_id,
        procedure=event.procedure,
        traceparent=traceparent,
        at=submission.submitted_at,
    )
    subject = subject_for(procedure=event.procedure, case_id=submission.case_id, event=event)
    return [NewEvent(envelope=envelope, subject=subject, version=1)]


def check_reply(reply: ReplyCreate, lang: str) -> tuple[ReplyCreate, list[FieldError]]:
    """The reply with its message trimmed, and every problem found."""
    errors: list[FieldError] = []
    message = reply.message.strip()
    if not message:
        errors.append({"field": "message", "message": translate("field.required", lang)})
    if len(reply.documents) > MAX_REPLY_DOCUMENTS:
        errors.append(
            {"field": "documents", "message": translate("field.too_many", lang, max=MAX_REPLY_DOCUMENTS)}
        )
    documents = [d.strip() for d in reply.documents]
    for i, document in enumerate(documents):
        try:
            normalize_url(document)
        except InvalidField as exc:
            errors.append({"field": f"documents.{i}", "message": translate(exc.key, lang, **exc.params)})
    return reply.model_copy(update={"message": message, "documents": documents}), errors


@dataclass(frozen=True)
class Reply:
    """A valid reply to a known case, ready to be recorded."""

    reply_id: uuid.UUID
    case_id: uuid.UUID
    procedure: str
    message: str
    documents: list[str]  # links, as the citizen gave them
    received_at: datetime
    # The ids of the files sent with it (`documents.receive_reply`), kept in intake's object store.
    uploaded: tuple[str, ...] = ()


def receive_reply(
    *, case_id: uuid.UUID, procedure: str, reply: ReplyCreate, uploaded: Sequence[str] = ()
) -> Reply:
    return Reply(
        reply_id=uuid.uuid4(),
        case_id=case_id,
        procedure=procedure,
        message=reply.message,
        documents=list(reply.documents),
        received_at=datetime.now(UTC),
        uploaded=tuple(uploaded),
    )


def reply_events(reply: Reply, *, version: int, traceparent: str | None) -> list[NewEvent]:
    """The events a reply records, as the case's `version`-th event: an answer arrived, and how many
    documents came with it; never what it says nor where the documents are."""
    event = CitizenReplied(
        case_id=reply.case_id,
        reply_id=reply.reply_id,
        documents=len(reply.documents) + len(reply.uploaded),
        replied_at=reply.received_at,
    )
    envelope = make_envelope(
        event, case_id=reply.case_id, procedure=reply.procedure, traceparent=traceparent, at=reply.received_at
    )
    subject = subject_for(procedure=reply.procedure, case_id=reply.case_id, event=event)
    return [NewEvent(envelope=envelope, subject=subject, version=version)]
