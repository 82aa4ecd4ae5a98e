"""A street report's public page, by its id (`/signalements/{case_id}`): anyone may follow a report
already made instead of making another (intake's form links here from "already reported nearby?").

It shows what is public of a report and nothing else: its category, its district, its state, its steps
and what the city did (`domain.progress`); never the point, the address, the description, the tracking
code, nor its reporter's own acts. Only the cases of a procedure with a place (`public: district`) are
public by id; any other id is "not found", the same way whether it exists or not.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.tracking import queries
from services.tracking.domain import progress
from shared.http import language_of, route_template
from shared.pages import UNAVAILABLE, Texts, language_links, page_templates, render_page
from shared.procedures import Catalogue, FieldType, Procedure

log = logging.getLogger(__name__)
PATH = "/signalements/{case_id}"
RETRY_AFTER_SECONDS = 2
router = APIRouter(include_in_schema=False)
templates = page_templates(Path(__file__).parent / "templates")


def page(case_id: uuid.UUID, lang: str) -> str:
    return PATH.format(case_id=case_id) + "?" + urlencode({"lang": lang})


@router.get(PATH, response_class=HTMLResponse)
async def report_page(request: Request, case_id: str) -> HTMLResponse:
    lang = language_of(request)
    try:
        found = await queries.find_case_by_id(request.app.state.runtime.pool, uuid.UUID(case_id))
    except ValueError:
        found = None
    except UNAVAILABLE as exc:
        log.warning("%s: the read model is unavailable: %s", route_template(request), type(exc).__name__)
        return _fault(lang, "page.unavailable.heading", "page.unavailable.text", status=503)
    catalogue: Catalogue = request.app.state.catalogue
    procedure = catalogue.get(found[0]["procedure"], found[0]["procedure_version"]) if found else None
    facts = _stored(found[0]["facts"]) if found else {}
    # A kind of report that could point at a person (harassment, night-time noise) has no public page.
    if found is None or procedure is None or procedure.located is None or procedure.sensitive(facts):
        return _fault(lang, "page.report.not_found_heading", "page.report.not_found_text", status=404)
    case, history = found
    t = Texts(lang)
    step = procedure.step(case["step"])
    steps, entries = progress(procedure, step=step.code, history=history, lang=lang)
    return render_page(
        templates,
        "report.html",
        lang,
        title=t("page.result.title", status=step.label.in_(lang), procedure=procedure.title.in_(lang)),
        alternates=language_links(lang, lambda other: page(case["case_id"], other)),
        case_id=case["case_id"],
        procedure_title=procedure.title.in_(lang),
        facts=_facts(procedure, case["facts"], lang),
        step=step,
        since=case["step_since"],
        submitted_at=case["submitted_at"],
        steps=steps,
        history=entries,
        original=page(case["duplicate_of"], lang) if case["duplicate_of"] else None,
        original_id=case["duplicate_of"],
    )


def _stored(facts: Any) -> dict[str, Any]:
    if isinstance(facts, str):  # stored as a JSON text by an early fold
        facts = json.loads(facts)
    return facts if isinstance(facts, dict) else {}


def _facts(procedure: Procedure, facts: Any, lang: str) -> dict[str, str]:
    """The report's category and district, labelled: its public facts but the grid cell."""
    facts = _stored(facts)
    category = next((f for f in procedure.fields if f.type is FieldType.CHOICE and f.public is True), None)
    out = {}
    for key, field, value in (
        ("page.report.category", category, facts.get(category.name) if category else None),
        ("page.report.district", procedure.located, facts.get("district")),
    ):
        choice = next((c for c in field.choices if c.value == value), None) if field else None
        if choice is not None:
            out[key] = choice.label.in_(lang)
    return out


def _fault(lang: str, heading_key: str, text_key: str, *, status: int) -> HTMLResponse:
    t = Texts(lang)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else {}
    return render_page(
        templates,
        "fault.html",
        lang,
        title=t("page.error_title", page=t(heading_key)),
        status=status,
        headers=headers,
        alternates=[],
        heading=t(heading_key),
        text=t(text_key),
    )
