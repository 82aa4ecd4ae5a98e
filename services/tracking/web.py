"""tracking's web page: type a tracking code, see the case. Works without JavaScript.

Same lookup as the JSON API (`lookup.py`) and the same status codes; a failed lookup shows the form again
with the reason, in the reader's language, and an outage or a fault is an HTML page too (503 with
`Retry-After`, 500 with a reference), never the JSON problem of the API. Every word comes from
`shared/locales/`. A tracking code is a bearer secret: pages carrying one are never cached nor sent on as
a referrer, and nothing here logs it (not even an exception's message, which might quote it).
"""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import asyncpg
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from services.tracking.lookup import lookup
from services.tracking.schemas import TrackingView
from shared.http import ApiError, language_of, route_template
from shared.i18n import languages, translate
from shared.pages import Texts, page_templates

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
# What shared/http answers with a JSON 503: here, an HTML page.
UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    OSError,
    TimeoutError,
)
RETRY_AFTER_SECONDS = 2
# Dates are read in the city's time: an event at 23:30 UTC happened the next day in Paris.

HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "Vary": "Accept-Language",
}
PRIVATE = {"Cache-Control": "no-store"}

router = APIRouter(include_in_schema=False)
templates = page_templates(HERE / "templates")


def static_files() -> StaticFiles:
    return StaticFiles(directory=HERE / "static")


@router.get("/", response_class=HTMLResponse)
async def lookup_form(request: Request) -> HTMLResponse:
    lang = language_of(request)
    return _render(
        "lookup.html",
        lang,
        title=Texts(lang)("page.lookup.heading"),
        alternates=_alternates(lang, lambda other: "/?" + urlencode({"lang": other})),
        typed="",
        error=None,
    )


@router.get("/suivi", response_class=HTMLResponse)
async def track_typed(
    request: Request, code: Annotated[str | None, Query(description="the tracking code as typed")] = None
) -> HTMLResponse:
    if code is None:
        return await lookup_form(request)
    return await _track(request, code)


@router.get("/suivi/{code}", response_class=HTMLResponse)
async def track_linked(request: Request, code: str) -> HTMLResponse:
    return await _track(request, code)


async def _track(request: Request, code: str) -> HTMLResponse:
    lang = language_of(request)
    try:
        if not code.strip():
            raise ApiError("page.error.code_empty", status=422)
        return _result(lang, await lookup(request=request, code=code, lang=lang))
    except ApiError as exc:
        return _failed_lookup(lang, code, exc)
    except UNAVAILABLE as exc:
        return _unavailable(request, lang, exc)
    except Exception as exc:
        return _fault(request, lang, exc)


def _unavailable(request: Request, lang: str, exc: BaseException) -> HTMLResponse:
    log.warning(
        "%s %s: a backing service is unavailable: %s",
        request.method,
        route_template(request),
        type(exc).__name__,
    )
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS), **PRIVATE}
    return _fault_page(lang, "page.unavailable.heading", "page.unavailable.text", status=503, headers=headers)


def _fault(request: Request, lang: str, exc: BaseException) -> HTMLResponse:
    reference = uuid.uuid4().hex[:12]
    # The frames, not the message: a message may quote the code.
    log.error(
        "unexpected error on %s %s (reference %s): %s\n%s",
        request.method,
        route_template(request),
        reference,
        type(exc).__name__,
        "".join(traceback.format_tb(exc.__traceback__)),
    )
    return _fault_page(
        lang, "page.internal.heading", "page.internal.text", status=500, headers=PRIVATE, reference=reference
    )


def _result(lang: str, view: TrackingView) -> HTMLResponse:
    t = Texts(lang)
    title = t("page.result.title", status=view.status.label, procedure=view.procedure.title)
    alternates = _alternates(lang, lambda other: f"/suivi/{view.tracking_code}?" + urlencode({"lang": other}))
    return _render("result.html", lang, headers=PRIVATE, title=title, alternates=alternates, view=view)


def _failed_lookup(lang: str, typed: str, exc: ApiError) -> HTMLResponse:
    t = Texts(lang)
    alternates = _alternates(lang, lambda other: "/suivi?" + urlencode({"code": typed, "lang": other}))
    return _render(
        "lookup.html",
        lang,
        status=exc.status,
        headers={**exc.headers, **PRIVATE},
        title=t("page.error_title", page=t("page.lookup.heading")),
        alternates=alternates,
        typed=typed,
        error=t(exc.key, **exc.params),
    )


def _fault_page(
    lang: str, heading_key: str, text_key: str, *, status: int, headers: dict[str, str], **params: object
) -> HTMLResponse:
    """An outage or a fault on our side, said in the reader's language."""
    t = Texts(lang)
    heading = t(heading_key)
    return _render(
        "fault.html",
        lang,
        status=status,
        headers=headers,
        title=t("page.error_title", page=heading),
        alternates=[],
        heading=heading,
        text=t(text_key, **params),
    )


def _alternates(lang: str, href: Callable[[str], str]) -> list[dict[str, str]]:
    """This page in the other languages, each named in its own language."""
    return [
        {"lang": other, "name": translate("page.language_name", other), "href": href(other)}
        for other in languages()
        if other != lang
    ]


def _render(
    template: str,
    lang: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    title: str,
    **context: Any,
) -> HTMLResponse:
    t = Texts(lang)
    html = templates.get_template(template).render(
        lang=lang, t=t, title=t("page.title", page=title, site=t("page.site_name")), **context
    )
    return HTMLResponse(
        html, status_code=status, headers={**HEADERS, **(headers or {}), "Content-Language": lang}
    )
