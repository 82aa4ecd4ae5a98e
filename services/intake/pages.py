"""intake's pages: the citizen does a procedure online, without JavaScript, in their language.

- `/demarches`: every procedure, what it is for, how long the city hall has to answer, what to prepare,
  and a search box (filtered here, no script).
- `/demarches/{code}`: the procedure's form, drawn from its definition (one macro per field type in
  `templates/fields.html`), plus who applies and how they want to hear of their case. It posts to itself
  (urlencoded or multipart: `request.form()` reads both) and goes through `api.submit_from`, the JSON route's
  own path, with the hidden idempotency key the form was drawn with: a double click, or back and send
  again, records one case. A problem comes back as the form with what was typed, an error summary at the
  top linking to each field and the message next to it (422); an outage says so and keeps the form (503).
- `/demarches/recu/{case_id}?cle=<key>`: the receipt, read from the answer stored for the form's key.
  The tracking code is a bearer secret: it never goes in a URL here, the key that shows it is as secret,
  the receipt is never cached nor sent on as a referrer, and logs name route templates only.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import asyncpg
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from services.intake import documents, domain, nearby, queries
from services.intake.api import SUBMISSION_SCOPE, submit_from
from services.intake.deps import CatalogueDep, Pool, SettingsDep
from services.intake.forms import (
    KEY_FIELD,
    Typed,
    applicant_fields,
    case_request,
    choose_again,
    deadline_words,
    folded,
    form_key,
    matches,
    posted_form,
    procedure_field,
    request_errors,
    with_errors,
)
from services.intake.forms import documents as to_prepare
from services.intake.schemas import CaseCreate, CasePublic
from services.intake.settings import IntakeSettings
from shared import idempotency
from shared.http import ApiError, language_of, route_template
from shared.idempotency import KeyReused
from shared.objectstore import ObjectStoreError
from shared.pages import (
    HEADERS,
    NO_STORE,
    UNAVAILABLE,
    Texts,
    language_links,
    page_templates,
    render_page,
)
from shared.procedures import FieldType, Procedure

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
templates = page_templates(Path(__file__).parent / "templates")
RETRY_AFTER_SECONDS = 2


@router.get("/")
async def home(request: Request) -> Response:
    return RedirectResponse("/demarches?" + urlencode({"lang": language_of(request)}), status_code=303)


@router.get("/demarches", response_class=HTMLResponse)
async def catalogue_page(
    request: Request,
    catalogue: CatalogueDep,
    settings: SettingsDep,
    q: Annotated[str, Query(description="words to look for")] = "",
) -> HTMLResponse:
    lang = language_of(request)
    t = Texts(lang)
    query = q.strip()[:200]  # a page, never a JSON 422, whatever the query
    found = [p for p in catalogue.all_latest() if matches(p, query, lang)]
    procedures = sorted(found, key=lambda p: folded(p.title.in_(lang)))
    return _render(
        "catalogue.html",
        lang,
        title=t("intake.catalogue.title"),
        alternates=language_links(lang, lambda other: _catalogue_href(other, query)),
        query=query,
        procedures=[
            {
                "href": _form_href(p, lang),
                "title": p.title.in_(lang),
                "summary": p.summary.in_(lang),
                "deadline": deadline_words(p.legal_deadline, t),
                "documents": to_prepare(p, t),
            }
            for p in procedures
        ],
        tracking_url=_tracking(settings, lang),
    )


@router.get("/demarches/{code}", response_class=HTMLResponse)
async def form_page(
    request: Request, code: str, catalogue: CatalogueDep, settings: SettingsDep
) -> HTMLResponse:
    lang = language_of(request)
    procedure = catalogue.latest(code)
    if procedure is None:
        return _unknown(lang)
    # A fresh key for each form drawn; the page may be kept for "back" (no code, nothing typed on it).
    return _form(
        procedure,
        lang,
        typed={KEY_FIELD: str(uuid.uuid4())},
        settings=settings,
        headers={"Cache-Control": "private, no-cache"},
    )


@router.post("/demarches/{code}", response_class=HTMLResponse)
async def send_form(
    request: Request, code: str, pool: Pool, catalogue: CatalogueDep, settings: SettingsDep
) -> Response:
    """Records the case (303 to its receipt), or sends the form back with what was typed and why."""
    lang = language_of(request)
    procedure = catalogue.latest(code)
    if procedure is None:
        return _unknown(lang)
    typed, uploads = await posted_form(request)
    key = form_key(typed)
    typed = {**typed, KEY_FIELD: key}
    # The form reads its own inputs only, as it ignores a stray typed field.
    asked = {f.name for f in procedure.fields if f.type is FieldType.FILE}
    mine = {name: files for name, files in uploads.items() if name in asked}
    files = await documents.receive_fields(procedure, mine, lang)
    sent = {d.field for d in files.checked} | {e["field"].removeprefix("data.") for e in files.errors}

    def again(**why: Any) -> HTMLResponse:
        return _form(procedure, lang, typed=typed, settings=settings, files_sent=sent, **why)

    payload = case_request(procedure, typed, lang=lang, counter_form=settings.counter_form)
    found = await _nearby(
        request, pool=pool, procedure=procedure, typed=typed, data=payload["data"], settings=settings
    )
    if found:
        return again(nearby_reports=found)
    try:
        body = CaseCreate.model_validate(payload)
    except ValidationError as exc:
        by_field = documents.ids_by_field(files.checked)
        errors = request_errors(procedure, payload, exc, lang, documents=by_field, file_errors=files.errors)
        return again(errors=errors, status=422)
    try:
        submitted = await submit_from(request, body, lang=lang, key=key, files=files)
    except ApiError as exc:
        return again(errors=exc.errors, status=exc.status)
    except ObjectStoreError as exc:
        _log_outage(request, exc)
        return again(banner="unavailable", status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    except KeyReused:
        # Sent before with other answers (back, change, send): that request stands, and this form gets a
        # new key, so that sending it again makes a new request.
        first = _receipt_href(await _case_of(pool, key), key, lang)
        fresh = {**typed, KEY_FIELD: str(uuid.uuid4())}
        return _form(
            procedure, lang, typed=fresh, settings=settings, banner="already_sent", status=409, sent=first
        )
    except UNAVAILABLE as exc:
        _log_outage(request, exc)
        return again(banner="unavailable", status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    except Exception as exc:
        return again(banner="internal", status=500, reference=_logged_fault(request, exc))
    receipt = _receipt_href(str(submitted.case.case_id), key, lang)
    return RedirectResponse(receipt, status_code=303, headers={**HEADERS, **NO_STORE})


async def _nearby(
    request: Request,
    *,
    pool: asyncpg.Pool,
    procedure: Procedure,
    typed: Typed,
    data: dict[str, Any],
    settings: IntakeSettings,
) -> list[nearby.NearbyReport]:
    """The open reports of the same kind near the place the form names. Not asked again once the citizen
    said theirs is another problem, nor for a form already sent (a double click: the report nearby would
    be their own); an outage is for sending the form to say."""
    if typed.get(nearby.CONFIRM_FIELD) == "1":
        return []
    try:
        if await _stored_answer(pool, typed[KEY_FIELD]) is not None:
            return []
        return await nearby.before_sending(
            pool,
            procedure=procedure,
            data=data,
            geocoder=request.app.state.geocoder,
            catalogue=request.app.state.catalogue,
            settings=settings,
            lang=language_of(request),
        )
    except UNAVAILABLE as exc:
        _log_outage(request, exc)
        return []


def _receipt_href(case_id: str, key: str, lang: str) -> str:
    return f"/demarches/recu/{case_id}?" + urlencode({"cle": key, "lang": lang})


@router.get("/demarches/recu/{case_id}", response_class=HTMLResponse)
async def receipt_page(
    request: Request,
    case_id: str,
    pool: Pool,
    catalogue: CatalogueDep,
    settings: SettingsDep,
    cle: Annotated[str, Query(description="the key the form was sent with")] = "",
) -> HTMLResponse:
    lang = language_of(request)
    t = Texts(lang)
    try:
        case = await _receipt(pool, case_id=case_id, key=cle)
    except UNAVAILABLE as exc:
        _log_outage(request, exc)
        return _fault(
            lang,
            "page.unavailable.heading",
            "intake.receipt.unavailable",
            status=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if case is None:
        return _fault(lang, "intake.receipt.not_found_heading", "intake.receipt.not_found_text", status=404)
    procedure = catalogue.get(case.procedure, case.procedure_version) or catalogue.latest(case.procedure)
    assert procedure is not None, "a case's procedure stays in the catalogue"
    follow = f"{settings.tracking_public_url.rstrip('/')}/suivi/{case.tracking_code}?" + urlencode(
        {"lang": lang}
    )
    return _render(
        "receipt.html",
        lang,
        title=t("page.result.title", status=t("intake.receipt.title"), procedure=procedure.title.in_(lang)),
        headers=NO_STORE,
        alternates=language_links(lang, lambda other: _receipt_href(case_id, cle, other)),
        case=case,
        groups=case.tracking_code.split("-"),
        procedure_title=procedure.title.in_(lang),
        # The date is the case's; what silence means, and whether the clock stops, the procedure's.
        deadline_rules=deadline_words(procedure.legal_deadline, t)[1:] if case.legal_deadline else [],
        first_step=procedure.first_step,
        follow=follow,
        catalogue=_catalogue_href(lang),
    )


# --- Drawing the pages --------------------------------------------------------------------------------


def _form(
    procedure: Procedure,
    lang: str,
    *,
    typed: Typed,
    settings: IntakeSettings,
    errors: list[domain.FieldError] | None = None,
    banner: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    files_sent: Iterable[str] = (),
    nearby_reports: Sequence[nearby.NearbyReport] = (),
    **banner_params: str,
) -> HTMLResponse:
    """The procedure's form with what was typed, each problem next to its field and in the summary, or a
    `banner` saying why the form came back (`unavailable`, `internal`, `already_sent`), or the open
    reports of the same kind nearby (`nearby_reports`), to follow one of them or send it anyway."""
    t = Texts(lang)
    known = procedure.districts is not None
    asked = [procedure_field(f, t, typed, districts_known=known) for f in procedure.fields]
    applicant = applicant_fields(t, typed, counter_form=settings.counter_form)
    summary = with_errors(asked + applicant, errors or [], t)
    title = procedure.title.in_(lang)
    sent_back = status != 200 or bool(nearby_reports)
    if sent_back:
        choose_again(asked, files_sent, t)
    return _render(
        "form.html",
        lang,
        status=status,
        # What was typed is personal data: a form sent back with it is never kept.
        headers={**(headers or {}), **(NO_STORE if sent_back else {})},
        title=_title(t, title, sent_back=sent_back, nearby=bool(nearby_reports)),
        # In another language the form would be blank: offered only before anything was typed.
        alternates=[] if sent_back else language_links(lang, lambda other: _form_href(procedure, other)),
        procedure=procedure,
        procedure_title=title,
        summary_text=procedure.summary.in_(lang),
        deadline=deadline_words(procedure.legal_deadline, t),
        asked=asked,
        multipart=any(f.type is FieldType.FILE for f in procedure.fields),
        applicant=applicant,
        summary=summary,
        key=typed[KEY_FIELD],
        key_field=KEY_FIELD,
        action=_form_href(procedure, lang),
        banner=banner,
        nearby=nearby_reports,
        nearby_radius=nearby.RADIUS_METRES,
        nearby_rounding=nearby.ROUNDED_TO_METRES,
        confirm_field=nearby.CONFIRM_FIELD,
        confirmed=bool(nearby_reports) or typed.get(nearby.CONFIRM_FIELD) == "1",
        banner_text=t(f"intake.form.{banner}.text", **banner_params) if banner else "",
        catalogue=_catalogue_href(lang),
        **banner_params,
    )


def _title(t: Texts, title: str, *, sent_back: bool, nearby: bool) -> str:
    if nearby:
        return t("intake.nearby.title", page=title)
    return t("page.error_title", page=title) if sent_back else title


def _form_href(procedure: Procedure, lang: str) -> str:
    return f"/demarches/{procedure.code}?" + urlencode({"lang": lang})


def _catalogue_href(lang: str, query: str = "") -> str:
    return "/demarches?" + urlencode({"q": query, "lang": lang} if query else {"lang": lang})


def _unknown(lang: str) -> HTMLResponse:
    return _fault(lang, "intake.form.unknown_heading", "intake.form.unknown_text", status=404)


def _fault(
    lang: str, heading_key: str, text_key: str, *, status: int, headers: dict[str, str] | None = None
) -> HTMLResponse:
    t = Texts(lang)
    return _render(
        "fault.html",
        lang,
        status=status,
        headers={**(headers or {}), **NO_STORE},
        title=t("page.error_title", page=t(heading_key)),
        alternates=[],
        heading=t(heading_key),
        text=t(text_key),
    )


def _log_outage(request: Request, exc: BaseException) -> None:
    log.warning(
        "%s %s: a backing service is unavailable: %s",
        request.method,
        route_template(request),
        type(exc).__name__,
    )


def _logged_fault(request: Request, exc: BaseException) -> str:
    reference = uuid.uuid4().hex[:12]
    # The frames, not the message: a message may quote what the citizen typed.
    log.error(
        "unexpected error on %s %s (reference %s): %s\n%s",
        request.method,
        route_template(request),
        reference,
        type(exc).__name__,
        "".join(traceback.format_tb(exc.__traceback__)),
    )
    return reference


def _render(
    template: str,
    lang: str,
    *,
    title: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    return render_page(templates, template, lang, title=title, status=status, headers=headers, **context)


def _tracking(settings: IntakeSettings, lang: str) -> str:
    return f"{settings.tracking_public_url.rstrip('/')}/?" + urlencode({"lang": lang})


# --- The receipt's case -------------------------------------------------------------------------------


async def _stored_answer(pool: asyncpg.Pool, key: str) -> dict[str, Any] | None:
    """The answer given to the submission sent with `key`."""
    answer = await idempotency.answered(pool, schema=queries.SCHEMA, scope=SUBMISSION_SCOPE, key=key)
    return answer.body if answer and isinstance(answer.body, dict) else None


async def _receipt(pool: asyncpg.Pool, *, case_id: str, key: str) -> CasePublic | None:
    """The case the form sent with `key` created, if it is `case_id`: the key is the receipt's secret."""
    answer = await _stored_answer(pool, key) if key else None
    if answer is None or answer.get("case_id") != case_id or "tracking_code" not in answer:
        return None
    return CasePublic.model_validate(answer)


async def _case_of(pool: asyncpg.Pool, key: str) -> str:
    answer = await _stored_answer(pool, key)
    return str((answer or {}).get("case_id", ""))
