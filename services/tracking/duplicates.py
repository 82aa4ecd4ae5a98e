"""A street report closed as a duplicate is followed in its original: the duplicate's page (by its tracking
code, web and JSON) shows where the original stands, its steps and its history, so that its reporter
follows the one report the city deals with. Never the original's tracking code, nor anything of its
reporter: what its public page shows (`reports.py`)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import asyncpg

from services.tracking import queries, reports
from services.tracking.domain import progress
from services.tracking.schemas import FollowedIn
from shared.procedures import Catalogue

log = logging.getLogger(__name__)
# workflow lets a report duplicate an open one only, so a chain of duplicates ends at a report being dealt
# with (the original, later found a duplicate itself); the bound only guards against a surprise.
MAX_HOPS = 5


async def followed_in(
    pool: asyncpg.Pool, case: dict[str, Any], *, catalogue: Catalogue, lang: str
) -> FollowedIn | None:
    """The report `case` is followed in (the end of its chain of duplicates), or None: not a duplicate,
    or its original not folded yet."""
    found, next_id = None, case.get("duplicate_of")
    for _ in range(MAX_HOPS):
        if next_id is None:
            break
        original = await queries.find_case_by_id(pool, next_id)
        if original is None:
            log.warning(
                "the original %s is not in the read model yet",
                next_id,
                extra={"case_id": str(case["case_id"])},
            )
            break
        found, next_id = original, original[0]["duplicate_of"]
    return _followed(found, catalogue=catalogue, lang=lang) if found is not None else None


def _followed(
    found: tuple[dict[str, Any], list[dict[str, Any]]], *, catalogue: Catalogue, lang: str
) -> FollowedIn:
    case, history = found
    procedure = catalogue.get(case["procedure"], case["procedure_version"])
    assert procedure is not None, "a case's procedure stays in the catalogue"
    step = procedure.step(case["step"])
    steps, entries = progress(procedure, step=step.code, history=history, lang=lang)
    case_id: uuid.UUID = case["case_id"]
    return FollowedIn(
        case_id=case_id,
        url=reports.page(case_id, lang),
        step=step.code,
        label=step.label.in_(lang),
        explanation=step.explanation.in_(lang),
        since=case["step_since"],
        final=(case["outcome"] or step.outcome) is not None,
        steps=steps,
        history=entries,
    )
