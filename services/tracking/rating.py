"""The rating part of a decided case's page: the form, what was typed and what is wrong with it, and
sending it on to intake's `POST /v1/ratings` (intake decides, once; tracking only relays its answer).
Whether a case was rated, tracking folds from `CaseRated`."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg
import httpx
from fastapi import Request
from starlette.exceptions import HTTPException

from services.tracking.forwarding import intake_problem, post_to_intake
from services.tracking.schemas import TrackingView
from shared import tracking_code
from shared.pages import Texts

log = logging.getLogger(__name__)
RATINGS = ("1", "2", "3", "4", "5")
# After the rating was recorded, the page thanks the citizen (`?avis=merci`): tracking may not have
# folded `CaseRated` yet.
THANKED = "merci"


@dataclass(frozen=True)
class RatingSection:
    """The rating part of a decided case's page: the form (what was typed, what is wrong), or thanks."""

    done: str | None = None  # the thanks, shown instead of the form
    rating: str = ""
    comment: str = ""
    error: str | None = None
    error_field: str = "rating"  # `rating` or `comment`, where the error summary's link goes


async def rating_section(request: Request, view: TrackingView, *, thanked: bool) -> RatingSection | None:
    if not view.status.final or view.followed_in is not None:
        return None  # a duplicate is dealt with in its original: nothing of its own to rate yet
    t = Texts(view.language)
    if thanked:
        return RatingSection(done=t("page.rating.thanks"))
    if await _rated(request, view.tracking_code):
        return RatingSection(done=t("page.rating.done"))
    return RatingSection()


async def _rated(request: Request, code: str) -> bool:
    pool: asyncpg.Pool = request.app.state.runtime.pool
    return bool(
        await pool.fetchval(
            "SELECT rated FROM tracking.cases WHERE tracking_code_digest = $1", tracking_code.digest(code)
        )
    )


async def typed_rating(request: Request) -> RatingSection:
    try:
        form = await request.form()
    except HTTPException:  # an unreadable form is an empty one: the page asks for a rating
        return RatingSection()
    rating, comment = form.get("rating"), form.get("comment")
    return RatingSection(
        rating=rating.strip() if isinstance(rating, str) else "",
        comment=comment if isinstance(comment, str) else "",
    )


def wrong(typed: RatingSection, error: str, *, field: str = "rating") -> RatingSection:
    return RatingSection(rating=typed.rating, comment=typed.comment, error=error, error_field=field)


async def send_rating(request: Request, view: TrackingView, typed: RatingSection) -> httpx.Response | None:
    """intake's answer (None if it cannot be reached), in the visitor's language."""
    body = {
        "tracking_code": view.tracking_code,
        "rating": int(typed.rating),
        "comment": typed.comment or None,
    }
    return await post_to_intake(request, "/v1/ratings", json=body, lang=view.language, what="rating")


def refusal(
    lang: str, typed: RatingSection, answer: httpx.Response | None
) -> tuple[RatingSection, int, dict[str, str]]:
    """What the page shows when intake did not record the rating: the section, the status, the headers
    (a 503 without `Retry-After`: the page adds its own)."""
    t = Texts(lang)
    problem = intake_problem(answer, what="rating")
    if answer is None or problem is None:  # intake unreachable, or a fault on its side: nothing recorded
        return (
            wrong(typed, t("page.rating.error.unavailable")),
            503,
            {},
        )
    if problem.get("type") == "error.already_rated":
        return RatingSection(done=t("page.rating.done")), 409, {}
    errors = problem.get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    field = "comment" if first.get("field") == "comment" else "rating"
    message = str(first.get("message") or problem.get("detail") or t("page.rating.error.unavailable"))
    headers = {"Retry-After": answer.headers["Retry-After"]} if "Retry-After" in answer.headers else {}
    return wrong(typed, message, field=field), answer.status_code, headers
