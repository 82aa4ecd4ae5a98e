"""tracking's web page: type a tracking code, see the case. Works without JavaScript.

Same lookup as the JSON API (`lookup.py`) and the same status codes; a failed lookup shows the form again
with the reason, in the reader's language, and an outage or a fault is an HTML page too (503 with
`Retry-After`, 500 with a reference), never the JSON problem of the API. Every word comes from
`shared/locales/`. A tracking code is a bearer secret: pages carrying one are never cached nor sent on as
a referrer, and nothing here logs it (not even an exception's message, which might quote it).

Once the case is decided, the page asks the citizen to rate the service: a plain form, posted here and
sent on to intake's `POST /v1/ratings` (intake decides, once; tracking only relays its answer), then a
redirect back to the page, which thanks them. Whether a case was rated, tracking folds from `CaseRated`.

While the city hall waits for the citizen (documents, information), the page shows a reply form: a
message and files, posted to `POST /suivi/reponse` and sent on to intake's `POST /v1/replies`
(`reply.py`), then back to the page, which thanks them.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import httpx
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.tracking import fix_check, reply
from services.tracking.lookup import lookup
from services.tracking.rating import (
    RATINGS,
    THANKED,
    RatingSection,
    rating_section,
    refusal,
    send_rating,
    typed_rating,
    wrong,
)
from services.tracking.schemas import TrackingView
from shared.http import ApiError, language_of, route_template
from shared.pages import (
    HEADERS,
    NO_STORE,
    UNAVAILABLE,
    Texts,
    language_links,
    page_templates,
    render_page,
)

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
RETRY_AFTER_SECONDS = 2
# Dates are read in the city's time: an event at 23:30 UTC happened the next day in Paris.

router = APIRouter(include_in_schema=False)
templates = page_templates(HERE / "templates")


@router.get("/", response_class=HTMLResponse)
async def lookup_form(request: Request) -> HTMLResponse:
    lang = language_of(request)
    return _render(
        "lookup.html",
        lang,
        title=Texts(lang)("page.lookup.heading"),
        alternates=language_links(lang, lambda other: "/?" + urlencode({"lang": other})),
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
async def track_linked(
    request: Request,
    code: str,
    avis: Annotated[str | None, Query(include_in_schema=False)] = None,
    reponse: Annotated[str | None, Query(include_in_schema=False)] = None,
    repare: Annotated[str | None, Query(include_in_schema=False)] = None,
) -> HTMLResponse:
    return await _track(
        request,
        code,
        thanked=avis == THANKED,
        replied=reponse == reply.THANKED,
        fix_said=repare if repare in fix_check.CHOICES else None,
    )


async def _track(
    request: Request,
    code: str,
    *,
    thanked: bool = False,
    replied: bool = False,
    fix_said: str | None = None,
) -> HTMLResponse:
    lang = language_of(request)

    async def page() -> HTMLResponse:
        if not code.strip():
            raise ApiError("page.error.code_empty", status=422)
        view = await lookup(request=request, code=code, lang=lang)
        return _result(
            lang,
            view,
            rating=await rating_section(request, view, thanked=thanked),
            answer=reply.reply_section(view, thanked=replied),
            fix=fix_check.fix_check_section(view, thanked=fix_said),
        )

    return await _answering(request, lang, code, page)  # type: ignore[return-value]


async def _answering(
    request: Request, lang: str, code: str, work: Callable[[], Awaitable[Response]]
) -> Response:
    """A page's answer, or the page saying what went wrong: a code that misses, an outage, a fault."""
    try:
        return await work()
    except ApiError as exc:
        return _failed_lookup(lang, code, exc)
    except UNAVAILABLE as exc:
        return _unavailable(request, lang, exc)
    except Exception as exc:
        return _fault(request, lang, exc)


def _back_to_page(view: TrackingView, lang: str, *, anchor: str = "", **query: str) -> RedirectResponse:
    """After a form was recorded: the case's page (303), saying thanks through its query."""
    page = f"/suivi/{quote(view.tracking_code)}?" + urlencode({"lang": lang, **query}) + anchor
    return RedirectResponse(page, status_code=303, headers={**HEADERS, **NO_STORE})


def _retry_later(status: int, headers: dict[str, str]) -> dict[str, str]:
    """intake unreachable (503): when to try again."""
    return {"Retry-After": str(RETRY_AFTER_SECONDS), **headers} if status == 503 else headers


@router.post("/suivi/{code}/avis", response_class=HTMLResponse)
async def rate(request: Request, code: str) -> Response:
    """The rating form, sent on to intake; then back to the page (303), or the page saying what is wrong."""
    lang = language_of(request)

    async def work() -> Response:
        view = await lookup(request=request, code=code, lang=lang)  # the lookup's limits apply here too
        typed = await typed_rating(request)
        if typed.rating not in RATINGS:
            return _result(
                lang, view, rating=wrong(typed, Texts(lang)("page.rating.error.choose")), status=422
            )
        answer = await send_rating(request, view, typed)
        if answer is not None and answer.status_code == 201:
            return _back_to_page(view, lang, avis=THANKED)
        return _refused(lang, view, typed, answer)

    return await _answering(request, lang, code, work)


@router.post(fix_check.PATH, response_class=HTMLResponse)
async def check_fix(request: Request, code: str) -> Response:
    """The "is it really fixed?" form, sent on to intake; then back to the page (303), or the page saying
    what is wrong. "Not fixed" reopens the report."""
    lang = language_of(request)

    async def work() -> Response:
        view = await lookup(request=request, code=code, lang=lang)  # the lookup's limits apply here too
        if fix_check.fix_check_section(view) is None:
            return _result(lang, view, status=409)
        typed = await fix_check.typed_fix_check(request, view)
        if typed.choice not in fix_check.CHOICES:
            error = Texts(lang)("page.fix.error.choose")
            return _result(lang, view, fix=fix_check.wrong(typed, error), status=422)
        answer = await fix_check.send_fix_check(request, view, typed)
        if answer is not None and answer.status_code == 201:
            return _back_to_page(view, lang, anchor="#repare", repare=typed.choice)
        section, status, headers = fix_check.refusal(lang, typed, answer)
        return _result(lang, view, fix=section, status=status, headers=_retry_later(status, headers))

    return await _answering(request, lang, code, work)


@router.post(reply.PATH, response_class=HTMLResponse)
async def answer_request(request: Request) -> Response:
    """The reply form (a message and files), sent on to intake; then back to the page (303), or the page
    with what was typed and what is wrong (the files must be chosen again: a page cannot keep them)."""
    lang = language_of(request)
    typed = await reply.typed_reply(request)
    t = Texts(lang)

    async def work() -> Response:
        if not typed.code.strip():
            raise ApiError("page.error.code_empty", status=422)
        view = await lookup(request=request, code=typed.code, lang=lang)  # the lookup's limits apply
        if reply.reply_section(view, thanked=False) is None:
            return _result(lang, view, answer=reply.closed(lang), status=409)
        if not typed.section.message.strip():
            error = reply.ReplyError(t("page.reply.error.message"), reply.TARGETS["message"])
            return _result(lang, view, answer=reply.wrong(typed.section, error), status=422)
        answer = await reply.send_reply(request, view, typed)
        if answer is not None and answer.status_code == 202:
            return _back_to_page(view, lang, anchor="#reponse", reponse=reply.THANKED)
        section, status, headers = reply.refusal(lang, typed.section, answer)
        return _result(lang, view, answer=section, status=status, headers=_retry_later(status, headers))

    return await _answering(request, lang, typed.code, work)


def _refused(
    lang: str, view: TrackingView, typed: RatingSection, answer: httpx.Response | None
) -> HTMLResponse:
    """intake said no: the page says why in the visitor's words (intake answers in their language)."""
    section, status, headers = refusal(lang, typed, answer)
    return _result(lang, view, rating=section, status=status, headers=_retry_later(status, headers))


def _unavailable(request: Request, lang: str, exc: BaseException) -> HTMLResponse:
    log.warning(
        "%s %s: a backing service is unavailable: %s",
        request.method,
        route_template(request),
        type(exc).__name__,
    )
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS), **NO_STORE}
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
        lang, "page.internal.heading", "page.internal.text", status=500, headers=NO_STORE, reference=reference
    )


def _result(
    lang: str,
    view: TrackingView,
    *,
    rating: RatingSection | None = None,
    answer: reply.ReplySection | None = None,
    fix: fix_check.FixCheckSection | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    t = Texts(lang)
    title = t("page.result.title", status=view.status.label, procedure=view.procedure.title)
    fix = fix if fix is not None else fix_check.fix_check_section(view)
    failed = (rating is not None and rating.error) or (fix is not None and fix.error)
    if failed or (answer is not None and answer.errors):
        title = t("page.error_title", page=title)
    alternates = language_links(
        lang, lambda other: f"/suivi/{view.tracking_code}?" + urlencode({"lang": other})
    )
    return _render(
        "result.html",
        lang,
        status=status,
        headers={**(headers or {}), **NO_STORE},
        title=title,
        alternates=alternates,
        view=view,
        rating=rating,
        ratings=RATINGS,
        reply=answer,
        reply_path=reply.PATH,
        fix=fix,
        fix_choices=fix_check.CHOICES,
    )


def _failed_lookup(lang: str, typed: str, exc: ApiError) -> HTMLResponse:
    t = Texts(lang)
    alternates = language_links(lang, lambda other: "/suivi?" + urlencode({"code": typed, "lang": other}))
    return _render(
        "lookup.html",
        lang,
        status=exc.status,
        headers={**exc.headers, **NO_STORE},
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


def _render(
    template: str,
    lang: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    title: str,
    **context: Any,
) -> HTMLResponse:
    return render_page(templates, template, lang, title=title, status=status, headers=headers, **context)
