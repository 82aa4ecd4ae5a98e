"""Street reports placed around one point of the city, for the "already reported nearby" tests."""

from __future__ import annotations

from typing import Any

import httpx

from shared.places import Point
from tests.builders import make_case

REPORT = "signalement-voirie"
# Where "3 place du Marché" (the demo report's address) is, by the city's street list.
HERE = Point(45.75784210526316, 4.831884210526316)
DESCRIPTION = "Le lampadaire devant le numéro 3 ne s'allume plus depuis une semaine."


def north_of(point: Point, metres: float) -> Point:
    return Point(point.latitude + metres / 111_195, point.longitude)


def at(point: Point) -> dict[str, float]:
    return {"latitude": point.latitude, "longitude": point.longitude}


async def report(
    intake: httpx.AsyncClient, point: Point = HERE, *, category: str = "eclairage", **more: Any
) -> dict[str, Any]:
    """A citizen reports a problem at `point` (or where `location=` says)."""
    data = {"category": category, "location": at(point), **more}
    answer = await intake.post("/v1/cases", json=make_case(REPORT, **data))
    assert answer.status_code == 201, answer.text
    case: dict[str, Any] = answer.json()
    return case
