"""`POST /open311/v2/requests.json`: a 311 app's report becomes a case, through `api.submit_from` like every
submission (the same checks, the address found by the geocoder, the same events and outbox).

Behind the public ingress, tracking takes this route (`GET requests.json` is its own) and forwards the
form here unchanged; it is left out of intake's OpenAPI document so that the path has one owner
(tracking documents it). The form maps onto a `CaseCreate` (see `_case`); the applicant is the person
named by `first_name`/`last_name`, with `email` or `phone`. `device_id` and `account_id` are not kept:
nothing in the spec makes them a retry's identity, so a retry is recognised only with our usual
`Idempotency-Key` header.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import Request, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from services.intake import domain
from services.intake.api import submit_from
from services.intake.deps import CatalogueDep, IdempotencyKey, SettingsDep
from services.intake.open311_fields import Door, value_of
from services.intake.schemas import ApplicantCreate, CaseCreate
from services.intake.settings import IntakeSettings
from shared.http import ApiError, Lang, media_type_of, validation_errors
from shared.i18n import translate
from shared.open311_http import (
    Open311Error,
    answer,
    format_of,
    in_both_formats,
    open311_router,
    refuse,
    services_of,
)

router = open311_router(include_in_schema=False)
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
# A 311 app posts for someone using it online: the case comes in as the city's own web forms' do.
CHANNEL = "web"
Problems = list[tuple[str, str]]  # (the Open311 parameter, what is wrong with it)


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value.strip() or None if isinstance(value, str) else None


def check_api_key(settings: IntakeSettings, given: str | None, lang: str) -> None:
    known = settings.open311_keys
    if given is None or not any(hmac.compare_digest(given.encode(), k.encode()) for k in known):
        raise refuse(403, "open311.api_key", lang)


def _place(form: FormData, lang: str, problems: Problems) -> dict[str, Any] | None:
    lat, lon, address = _text(form, "lat"), _text(form, "long"), _text(form, "address_string")
    place: dict[str, Any] = {"address": address} if address else {}
    if lat is not None or lon is not None:
        try:
            place |= {"latitude": float(lat or ""), "longitude": float(lon or "")}
        except ValueError:
            problems.append(("lat, long", translate("open311.lat_long", lang)))
            return None
    if not place:
        problems.append(("lat, long, address_string", translate("open311.location_required", lang)))
        return None
    return place


def _data(door: Door, form: FormData, value: str | None, lang: str, problems: Problems) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if door.category is not None:
        data[door.category.name] = value
    if (place := _place(form, lang, problems)) is not None:
        data[door.location.name] = place
    for f, name in ((door.media, "media_url"), (door.description, "description")):
        if f is not None and (text := _text(form, name)) is not None:
            data[f.name] = text
    for key, sent in form.multi_items():
        if not (key.startswith("attribute[") and key.endswith("]")) or not isinstance(sent, str):
            continue
        code = key[len("attribute[") : -1]
        if (f := door.attribute(code)) is None:
            codes = ", ".join(a.name for a in door.attributes) or "-"
            problems.append((key, translate("open311.unknown_attribute", lang, codes=codes)))
        elif sent.strip():
            data[f.name] = value_of(f, sent)
    return data


def _applicant(form: FormData, lang: str, problems: Problems) -> dict[str, Any]:
    name = " ".join(p for p in (_text(form, "first_name"), _text(form, "last_name")) if p)
    email, phone = _text(form, "email"), _text(form, "phone")
    if not name:
        problems.append(("first_name, last_name", translate("open311.name_required", lang)))
    if email is None and phone is None:
        problems.append(("email, phone", translate("field.applicant_contact", lang)))
    return {"name": name, "email": email, "phone": phone, "language": lang}


def _parameter(door: Door, field: str) -> str:
    """The Open311 parameter a problem of our form's `field` (`data.location`, `applicant.email`) is
    about; a parameter's own name stays as it is."""
    where, _, name = field.partition(".")
    if where == "applicant":
        return {"name": "first_name, last_name", "": "email, phone"}.get(name, name)
    if where != "data":
        return field
    own = {
        f.name: p
        for f, p in (
            (door.category, "service_code"),
            (door.media, "media_url"),
            (door.description, "description"),
        )
        if f is not None
    }
    own[door.location.name] = "lat, long, address_string"
    return own.get(name) or f"attribute[{name}]"


def _refusal(door: Door, problems: Problems) -> Open311Error:
    return Open311Error(400, [f"{_parameter(door, field)}: {message}" for field, message in problems])


def _pairs(errors: list[dict[str, str]], *, under: str = "") -> Problems:
    return [(under + e["field"], e["message"]) for e in errors]


def _case(door: Door, form: FormData, value: str | None, lang: str) -> CaseCreate:
    """The form as a `CaseCreate`, or a 400 naming every missing or wrong parameter."""
    problems: Problems = []
    data = _data(door, form, value, lang, problems)
    applicant = _applicant(form, lang, problems)
    if problems:
        # Said all at once: what else the procedure finds wrong (not the place: unknown without its point).
        place = f"data.{door.location.name}"
        others = [e for e in domain.check_data(door.procedure, data, lang)[1] if e["field"] != place]
        raise _refusal(door, problems + _pairs(others))
    try:
        return CaseCreate(
            procedure=door.procedure.code, data=data, applicant=ApplicantCreate(**applicant), channel=CHANNEL
        )
    except ValidationError as exc:
        errors = validation_errors(exc, lang)  # type: ignore[arg-type]  # reads only `errors()`
        raise _refusal(door, _pairs(errors, under="applicant.")) from exc


async def _form(request: Request, lang: str) -> FormData:
    if media_type_of(request.scope) not in FORMS:
        raise refuse(400, "open311.form_expected", lang)
    return await request.form()


@in_both_formats(router.post, "/requests")
async def post_request(
    request: Request, catalogue: CatalogueDep, settings: SettingsDep, lang: Lang, key: IdempotencyKey
) -> Response:
    """A report, form-encoded (`api_key`, `service_code`, `lat`/`long` or `address_string`, `description`,
    `media_url`, `attribute[code]=value`, `first_name`, `last_name`, `email`, `phone`)."""
    form = await _form(request, lang)
    check_api_key(settings, _text(form, "api_key"), lang)
    code = _text(form, "service_code")
    if code is None:
        raise refuse(400, "open311.service_code_required", lang)
    service = services_of(request).get(code)
    if service is None or not service.offered:
        raise refuse(404, "open311.unknown_service", lang, code=code[:100])
    procedure = catalogue.latest(service.procedure)
    assert procedure is not None, "an offered service's procedure is in the catalogue"
    door = Door.of(procedure)
    body = _case(door, form, service.value, lang)
    try:
        submitted = await submit_from(request, body, lang=lang, key=key)
    except ApiError as exc:
        if exc.status == 422 and exc.errors:
            raise _refusal(door, _pairs(exc.errors)) from exc
        raise
    notice = translate("open311.service_notice", lang, explanation=procedure.first_step.explanation.in_(lang))
    created = [
        {"service_request_id": str(submitted.case.case_id), "service_notice": notice, "account_id": None}
    ]
    headers = {"Idempotent-Replayed": "true"} if submitted.replayed else None
    return answer(format_of(request), created, root="service_requests", headers=headers)
