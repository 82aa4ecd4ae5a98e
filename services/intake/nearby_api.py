"""The open reports near a place, over HTTP (`nearby.py` finds them):

- `GET /v1/reports/nearby`: public, for a place given by its point or its address, e.g. a city's map or
  app asking before the citizen writes a report. A 422 says what is wrong, in the visitor's language.
- `GET /internal/v1/cases/{case_id}/nearby`: for workflow's case view, the reports near a case, so that
  an agent sees which report this one may duplicate (`mark-duplicate` with `duplicate_of`).
"""

from __future__ import annotations

import logging
import math
import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from services.intake import places
from services.intake.deps import CatalogueDep, GeocoderDep, Pool, SettingsDep
from services.intake.nearby import RADIUS_METRES, NearbyPublic, NearbyReport, category_field, describe, find
from shared.deps import InternalCaller
from shared.http import ApiError, Lang
from shared.i18n import translate
from shared.places import Geocoder, Point
from shared.procedures import Catalogue, Procedure

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1")
internal_router = APIRouter(prefix="/internal/v1", include_in_schema=False, dependencies=[InternalCaller])


class Invalid(Exception):
    """One of the query's fields is wrong: `message` says how, in the visitor's language."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.problem = {"field": field, "message": message}


def _invalid(*problems: Invalid) -> ApiError:
    return ApiError("error.invalid_request", status=422, errors=[p.problem for p in problems])


def _report_procedure(catalogue: Catalogue, code: str, lang: str) -> Procedure:
    procedure = catalogue.latest(code)
    if procedure is not None and procedure.located is not None and category_field(procedure) is not None:
        return procedure
    located = [p.code for p in catalogue.all_latest() if p.located is not None]
    message = translate("intake.nearby.procedure", lang, code=code[:60], available=", ".join(located))
    raise _invalid(Invalid("procedure", message))


def _coordinate(name: str, text: str | None, limit: float, lang: str) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        value = float(text.strip().replace(",", "."))
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not -limit <= value <= limit:
        raise Invalid(name, translate(f"field.{name}", lang))
    return value


async def _point(
    procedure: Procedure,
    geocoder: Geocoder,
    lang: str,
    *,
    lat: str | None,
    lon: str | None,
    address: str | None,
) -> Point:
    """The place asked about: the point given, or the address's, inside the city."""
    latitude = _coordinate("latitude", lat, 90, lang)
    longitude = _coordinate("longitude", lon, 180, lang)
    if latitude is not None and longitude is not None:
        point, field = Point(latitude, longitude), "latitude"
    elif latitude is None and longitude is None and address and len(address.strip()) >= 3:
        assert procedure.located is not None
        name = procedure.located.name
        found = (await places.locate(procedure, {name: {"address": address}}, geocoder))[name]  # or 503
        if "latitude" not in found:
            raise Invalid("address", translate("field.location_not_found", lang))
        point, field = Point(found["latitude"], found["longitude"]), "address"
    else:
        raise Invalid("latitude" if latitude is None else "longitude", translate("intake.nearby.place", lang))
    assert procedure.districts is not None  # a located procedure has its districts (`shared.procedures`)
    if procedure.districts.containing(point) is None:
        raise Invalid(field, translate("field.location_outside", lang))
    return point


@router.get("/reports/nearby", response_model=NearbyPublic)
async def get_nearby(
    pool: Pool,
    catalogue: CatalogueDep,
    settings: SettingsDep,
    geocoder: GeocoderDep,
    lang: Lang,
    procedure: Annotated[str, Query(max_length=60, description="a procedure of reports with a place")],
    category: Annotated[str, Query(max_length=60, description="the report's category, e.g. `eclairage`")],
    latitude: Annotated[
        str | None, Query(max_length=40, description="WGS 84 degrees, with `longitude`")
    ] = None,
    longitude: Annotated[
        str | None, Query(max_length=40, description="WGS 84 degrees, with `latitude`")
    ] = None,
    address: Annotated[
        str | None, Query(max_length=300, description="an address in the city, instead of a point")
    ] = None,
) -> NearbyPublic:
    """The open reports of `category` within 50 m of a point or an address, nearest first: their public
    id, category, state, day, district and distance (rounded to 10 m), never their point, their address
    or anything their reporter wrote."""
    report = _report_procedure(catalogue, procedure, lang)
    problems = []
    field = category_field(report)
    assert field is not None
    if category not in {c.value for c in field.choices}:
        choices = ", ".join(c.value for c in field.choices)
        problems.append(Invalid("category", translate("field.choice", lang, choices=choices)))
    try:
        point = await _point(report, geocoder, lang, lat=latitude, lon=longitude, address=address)
    except Invalid as exc:
        problems.append(exc)
    if problems:
        raise _invalid(*problems)
    # A kind of report that could point at a person (harassment, night-time noise) is never said to be
    # near a place; agents still see those in their case view.
    found = (
        []
        if report.sensitive({field.name: category})
        else await find(pool, procedure=report.code, category=category, point=point)
    )
    reports = [describe(n, catalogue=catalogue, settings=settings, lang=lang) for n in found]
    return NearbyPublic(procedure=report.code, category=category, reports=reports)


class NearbyInternal(BaseModel):
    case_id: uuid.UUID
    radius_m: int = RADIUS_METRES
    reports: list[NearbyReport]


@internal_router.get("/cases/{case_id}/nearby", response_model=NearbyInternal)
async def get_case_nearby(
    case_id: uuid.UUID, pool: Pool, catalogue: CatalogueDep, settings: SettingsDep, lang: Lang
) -> NearbyInternal:
    """The open reports of the case's category within 50 m of it, but itself (none for a case that is
    not a report with a place)."""
    row = await pool.fetchrow(
        "SELECT p.procedure, p.category, p.latitude, p.longitude FROM intake.cases c "
        "LEFT JOIN intake.report_places p USING (case_id) WHERE c.case_id = $1",
        case_id,
    )
    if row is None:
        raise ApiError("intake.case_not_found", status=404, case_id=case_id)
    found = []
    if row["procedure"] is not None:
        point = Point(row["latitude"], row["longitude"])
        found = await find(
            pool, procedure=row["procedure"], category=row["category"], point=point, besides=case_id
        )
    log.info("%d open reports nearby", len(found), extra={"case_id": str(case_id)})
    reports = [describe(n, catalogue=catalogue, settings=settings, lang=lang) for n in found]
    return NearbyInternal(case_id=case_id, reports=reports)
