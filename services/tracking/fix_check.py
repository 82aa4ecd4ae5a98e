"""The "is it really fixed?" part of a street report's page, once the city says the work is done: two
choices and a comment, sent on to intake's `POST /v1/fix-checks` (intake decides, once per "done";
tracking only relays its answer). "Not fixed" reopens the report. The question is put plainly four weeks
after "done" (workflow's `FixCheckDue`, when notify writes too); the reporter may answer before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from fastapi import Request
from starlette.exceptions import HTTPException

from services.tracking.forwarding import intake_problem, post_to_intake
from services.tracking.schemas import HistoryKind, TrackingView
from shared.pages import Texts

log = logging.getLogger(__name__)
CHOICES = ("fixed", "not-fixed")
PATH = "/suivi/{code}/repare"
# After the answer was recorded, the page thanks the reporter (`?repare=merci`): tracking may not have
# folded `FixChecked` yet.
THANKED = "merci"


@dataclass(frozen=True)
class FixCheckSection:
    """The question (what was chosen and typed, what is wrong), or what the reporter answered."""

    asked: bool = False  # put plainly: the weeks after "done" have passed
    done: str | None = None  # the answer recorded, said back; shown instead of the form
    choice: str = ""
    comment: str = ""
    error: str | None = None
    error_field: str = "fixed"  # `fixed` (the choice) or `comment`, where the summary's link goes


def fix_check_section(view: TrackingView, *, thanked: str | None = None) -> FixCheckSection | None:
    """`thanked`: the answer just sent (the page it redirects to), shown back even once the report is
    reopened; only on a report whose reporter was asked (or answered) already."""
    check = view.fix_check
    answered = any(h.kind in (HistoryKind.FIX_CONFIRMED, HistoryKind.NOT_FIXED) for h in view.history)
    if check is None and not (thanked and answered):
        return None
    t = Texts(view.language)
    answer = thanked or (check.answer if check else None)
    if answer == "fixed":
        return FixCheckSection(done=t("page.fix.done_fixed"))
    if answer == "not-fixed":
        return FixCheckSection(done=t("page.fix.done_not_fixed"))
    return FixCheckSection(asked=check.asked if check else False)


async def typed_fix_check(request: Request, view: TrackingView) -> FixCheckSection:
    try:
        form = await request.form()
    except HTTPException:  # an unreadable form is an empty one: the page asks again
        return FixCheckSection()
    choice, comment = form.get("fixed"), form.get("comment")
    return FixCheckSection(
        asked=view.fix_check.asked if view.fix_check else False,
        choice=choice.strip() if isinstance(choice, str) else "",
        comment=comment if isinstance(comment, str) else "",
    )


def wrong(typed: FixCheckSection, error: str, *, field: str = "fixed") -> FixCheckSection:
    return FixCheckSection(
        asked=typed.asked, choice=typed.choice, comment=typed.comment, error=error, error_field=field
    )


async def send_fix_check(
    request: Request, view: TrackingView, typed: FixCheckSection
) -> httpx.Response | None:
    """intake's answer (None if it cannot be reached), in the visitor's language."""
    body = {
        "tracking_code": view.tracking_code,
        "fixed": typed.choice == "fixed",
        "comment": typed.comment or None,
    }
    return await post_to_intake(request, "/v1/fix-checks", json=body, lang=view.language, what="fix check")


def refusal(
    lang: str, typed: FixCheckSection, answer: httpx.Response | None
) -> tuple[FixCheckSection, int, dict[str, str]]:
    """What the page shows when intake did not record the answer: the section, the status, the headers."""
    t = Texts(lang)
    problem = intake_problem(answer, what="fix check")
    if answer is None or problem is None:  # intake unreachable, or a fault on its side: nothing recorded
        return wrong(typed, t("page.fix.error.unavailable")), 503, {}
    if problem.get("type") == "error.fix_check_already":
        return FixCheckSection(done=t("page.fix.done_already")), 409, {}
    errors = problem.get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    field = "comment" if first.get("field") == "comment" else "fixed"
    message = str(first.get("message") or problem.get("detail") or t("page.fix.error.unavailable"))
    headers = {"Retry-After": answer.headers["Retry-After"]} if "Retry-After" in answer.headers else {}
    return wrong(typed, message, field=field), answer.status_code, headers
