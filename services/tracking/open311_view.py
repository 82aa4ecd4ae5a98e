"""A street report as an Open311 GeoReport v2 request: what anyone may read of it, and nothing personal.

- `status` is `open` until the case has an outcome (a final step), then `closed`; the real state is said
  by `status_notes`, the step's own label ("Intervention faite (service fait)"): "closed" is never shown as
  "fixed", which only the reporter can confirm. A duplicate's notes name the original request.
- `lat`/`long` are the centre of the report's public H3 cell (about 130 m across, `shared.places`), never
  the point given: the exact place, like the address, stays in intake.
- `address`, `description` and `media_url` are left out: what a reporter writes or photographs may name
  or show people. No name, e-mail or phone is ever here: tracking does not hold them.
- `expected_datetime` is the end of the day by which 9 in 10 similar recent reports were dealt with from
  the same step (stats' forecast, as on the tracking page), when there is one and the report is open.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import h3
from pydantic import BaseModel, Field

from services.tracking.domain import forecast_of
from shared.i18n import translate
from shared.open311 import Open311Services
from shared.open311_http import datetime_text
from shared.procedures import CITY_TIMEZONE, Catalogue, Procedure, Step

END_OF_DAY = time(23, 59, 59)


class RequestOpen311(BaseModel):
    service_request_id: str
    status: str = Field(description="open, or closed once the report has an outcome")
    status_notes: str | None = Field(
        default=None, description="the report's state, as its tracking page says"
    )
    service_name: str | None = None
    service_code: str
    agency_responsible: str | None = Field(default=None, description="the city's department in charge")
    requested_datetime: str = Field(description="ISO 8601, UTC", examples=["2025-06-01T08:30:00Z"])
    updated_datetime: str | None = Field(
        default=None, description="when the state last changed (closed: when)"
    )
    expected_datetime: str | None = Field(default=None, description="from stats' forecast, while open")
    lat: float | None = Field(default=None, description="the centre of the report's H3 cell, not its point")
    long: float | None = Field(default=None, description="the centre of the report's H3 cell, not its point")


def _centre(facts: dict[str, Any]) -> tuple[float, float] | tuple[None, None]:
    cell = facts.get("cell")
    if not isinstance(cell, str) or not h3.is_valid_cell(cell):
        return None, None
    lat, lng = h3.cell_to_latlng(cell)
    return round(lat, 6), round(lng, 6)


def _expected(
    step: Step, since: datetime, figures: dict[str, Any] | None, lang: str, today: date
) -> str | None:
    forecast = forecast_of(step, since, figures, lang, today)
    if not forecast.available or forecast.likely_to is None:
        return None
    return datetime_text(datetime.combine(forecast.likely_to, END_OF_DAY, CITY_TIMEZONE))


def _notes(procedure: Procedure, case: dict[str, Any], lang: str) -> str:
    label = procedure.step(case["step"]).label.in_(lang)
    if case["duplicate_of"] is None:
        return label
    return translate("open311.duplicate_of", lang, label=label, original=str(case["duplicate_of"]))


def request_of(
    case: dict[str, Any],
    *,
    catalogue: Catalogue,
    services: Open311Services,
    lang: str,
    figures: dict[str, Any] | None,
    today: date,
) -> dict[str, Any]:
    """The report as the spec's request, values absent left out."""
    procedure = catalogue.get(case["procedure"], case["procedure_version"])
    if procedure is None:
        raise LookupError(
            f"procedure {case['procedure']} v{case['procedure_version']} is not in the catalogue"
        )
    step = procedure.step(case["step"])
    closed = (case["outcome"] or step.outcome) is not None
    facts = case["facts"] if isinstance(case["facts"], dict) else {}
    service = services.of_case(procedure.code, facts)
    lat, long = _centre(facts)
    request = {
        "service_request_id": str(case["case_id"]),
        "status": "closed" if closed else "open",
        "status_notes": _notes(procedure, case, lang),
        "service_name": service.label.in_(lang) if service else procedure.title.in_(lang),
        "service_code": service.code if service else procedure.code,
        "agency_responsible": case["service"] or (service.group if service else procedure.service),
        "requested_datetime": datetime_text(case["submitted_at"]),
        "updated_datetime": datetime_text(case["step_since"]),
        "expected_datetime": None if closed else _expected(step, case["step_since"], figures, lang, today),
        "lat": lat,
        "long": long,
    }
    return {k: v for k, v in request.items() if v is not None}
