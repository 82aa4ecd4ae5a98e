"""Open street reports near a place: before a citizen sends a report, and for the agent deciding whether
a report is a duplicate, the open reports of the same category within `RADIUS_METRES` (FixMyStreet's
most-asked feature: follow the report already made rather than make another).

A report's point is as private as the address it came from: it is kept in `intake.report_places`
(migration 015, written with the case) and never leaves intake. What is shown of a report nearby is what
its public page shows (`/signalements/{case_id}` on tracking): its category, its district, its state and
the day it was made, and how far it is, rounded to `ROUNDED_TO_METRES`. Open: intake folded no final step
for it (`intake.steps`, from workflow's `StepChanged`), or nothing yet since it was submitted.

Routes: `nearby_api.py`; the citizen's form: `pages.py`.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
from pydantic import BaseModel, Field

from services.intake import places
from services.intake.domain import Submission
from services.intake.settings import IntakeSettings
from shared.http import ApiError
from shared.places import Geocoder, Point, around, distance_m
from shared.procedures import CITY_TIMEZONE, Catalogue, FieldType, FormField, Procedure

log = logging.getLogger(__name__)
RADIUS_METRES = 50
ROUNDED_TO_METRES = 10
AT_MOST = 10  # the nearest; more would not be read
# tracking's public page of a report (services never import each other: the path is said here too).
REPORT_PAGE = "/signalements/{case_id}"
# The form's answer to "already reported nearby?": the citizen's problem is another one, send it.
CONFIRM_FIELD = "confirm_new"


class NearbyReport(BaseModel):
    """An open report near the place: what its public page shows, and how far it is."""

    case_id: uuid.UUID = Field(description="the report's public id")
    category: str
    category_label: str
    step: str
    state_label: str = Field(description="where the report stands, in the reader's language")
    submitted_on: date = Field(description="the day it was made (the city's day)")
    distance_m: int = Field(description=f"how far from the place, rounded to {ROUNDED_TO_METRES} m")
    district: str | None
    district_label: str | None
    url: str = Field(description="its public page on tracking, to follow it")


class NearbyPublic(BaseModel):
    procedure: str
    category: str
    radius_m: int = RADIUS_METRES
    reports: list[NearbyReport] = Field(description="nearest first")


def category_field(procedure: Procedure) -> FormField | None:
    """A report's category: the procedure's public choice field (a street report's kind of problem)."""
    return next((f for f in procedure.fields if f.type is FieldType.CHOICE and f.public is True), None)


def point_of(place: Any) -> Point | None:
    """The point of a form's place, when it has one that makes sense."""
    if not isinstance(place, dict):
        return None
    lat, lon = place.get("latitude"), place.get("longitude")
    for value, limit in ((lat, 90), (lon, 180)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return None
        if not -limit <= value <= limit:
            return None
    return Point(float(lat), float(lon))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Place:
    """A street report's place, as intake keeps it (`intake.report_places`)."""

    procedure: str
    category: str
    point: Point
    district: str | None


def place_of(submission: Submission) -> Place | None:
    """The place a submission records beside its case: a street report's, when it has a point."""
    located, category = submission.procedure.located, category_field(submission.procedure)
    point = point_of(submission.data.get(located.name)) if located is not None else None
    if located is None or point is None:
        return None
    return Place(
        procedure=submission.procedure.code,
        category=str(submission.data.get(category.name, "")) if category is not None else "",
        point=point,
        district=submission.data[located.name].get("district"),
    )


@dataclass(frozen=True)
class Near:
    row: asyncpg.Record
    distance: float


async def find(
    pool: asyncpg.Pool, *, procedure: str, category: str, point: Point, besides: uuid.UUID | None = None
) -> list[Near]:
    """The open reports of `procedure` and `category` within `RADIUS_METRES` of `point`, nearest first:
    the index's box, then the exact distance."""
    south, west, north, east = around(point, RADIUS_METRES)
    rows = await pool.fetch(
        "SELECT p.case_id, p.category, p.latitude, p.longitude, p.district, c.procedure, "
        "c.procedure_version, c.submitted_at, s.step "
        "FROM intake.report_places p JOIN intake.cases c USING (case_id) "
        "LEFT JOIN intake.steps s USING (case_id) "
        "WHERE p.procedure = $1 AND p.category = $2 AND p.latitude BETWEEN $3 AND $4 "
        "AND p.longitude BETWEEN $5 AND $6 AND s.outcome IS NULL AND p.case_id IS DISTINCT FROM $7",
        procedure,
        category,
        south,
        north,
        west,
        east,
        besides,
    )
    near = [Near(r, distance_m(point, Point(r["latitude"], r["longitude"]))) for r in rows]
    near = [n for n in near if n.distance <= RADIUS_METRES]
    return sorted(near, key=lambda n: (n.distance, n.row["submitted_at"]))[:AT_MOST]


def _label(f: FormField | None, value: str | None, lang: str) -> str | None:
    choice = next((c for c in f.choices if c.value == value), None) if f is not None else None
    return choice.label.in_(lang) if choice is not None else value


def describe(near: Near, *, catalogue: Catalogue, settings: IntakeSettings, lang: str) -> NearbyReport:
    """A report nearby as the public may see it: never its point, its address or its description."""
    row = near.row
    procedure = catalogue.get(row["procedure"], row["procedure_version"]) or catalogue.latest(
        row["procedure"]
    )
    assert procedure is not None, "a case's procedure stays in the catalogue"
    step = procedure.step(row["step"]) if row["step"] else procedure.first_step
    page = REPORT_PAGE.format(case_id=row["case_id"])
    return NearbyReport(
        case_id=row["case_id"],
        category=row["category"],
        category_label=_label(category_field(procedure), row["category"], lang) or "",
        step=step.code,
        state_label=step.label.in_(lang),
        submitted_on=row["submitted_at"].astimezone(CITY_TIMEZONE).date(),
        distance_m=int(round(near.distance / ROUNDED_TO_METRES) * ROUNDED_TO_METRES),
        district=row["district"],
        district_label=_label(procedure.located, row["district"], lang),
        url=f"{settings.tracking_public_url.rstrip('/')}{page}?lang={lang}",
    )


async def before_sending(
    pool: asyncpg.Pool,
    *,
    procedure: Procedure,
    data: dict[str, Any],
    geocoder: Geocoder,
    catalogue: Catalogue,
    settings: IntakeSettings,
    lang: str,
) -> list[NearbyReport]:
    """The open reports near the place a form names, of its category. None when the form does not name
    both yet, or the address search fails: sending the form then says what is wrong."""
    located, category = procedure.located, category_field(procedure)
    if (
        located is None
        or category is None
        or data.get(category.name) not in {c.value for c in category.choices}
        or procedure.sensitive(data)  # never said to be near a place, in public
    ):
        return []
    try:
        data = await places.locate(procedure, data, geocoder)
    except ApiError:
        return []
    point = point_of(data.get(located.name))
    if point is None:
        return []
    found = await find(pool, procedure=procedure.code, category=str(data[category.name]), point=point)
    if found:
        ids = ", ".join(str(n.row["case_id"]) for n in found)
        log.info("the form came back with open reports nearby: %s", ids, extra={"procedure": procedure.code})
    return [describe(n, catalogue=catalogue, settings=settings, lang=lang) for n in found]
