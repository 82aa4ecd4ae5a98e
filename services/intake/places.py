"""Where a street report is: an address turned into a point before the form is checked (`domain.check_data`
then finds its district in the city's polygons and its public cell)."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from services.intake.settings import IntakeSettings
from shared.http import ApiError
from shared.places import AddressApi, Gazetteer, Geocoder
from shared.procedures import Procedure

log = logging.getLogger(__name__)


def make_geocoder(settings: IntakeSettings, http: httpx.AsyncClient) -> Geocoder:
    if settings.geocoder == "address-api":
        assert settings.city_insee_code is not None  # checked by the settings
        return AddressApi(http, url=settings.address_api_url, citycode=settings.city_insee_code)
    return Gazetteer.load(settings.gazetteer_file)


async def locate(procedure: Procedure, data: dict[str, Any], geocoder: Geocoder) -> dict[str, Any]:
    """The form's data with the point of a place given only by its address, when the geocoder finds it
    (otherwise the check says the address was not found). A geocoder that fails is a 503 that says to
    give the phone's position or to try again, never a lost form: nothing is recorded."""
    located = procedure.located
    if located is None or procedure.districts is None:
        return data
    place = data.get(located.name)
    if not isinstance(place, dict) or not isinstance(place.get("address"), str):
        return data
    if place.get("latitude") is not None or place.get("longitude") is not None:
        return data
    try:
        point = await geocoder.locate(place["address"])
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        log.warning("the address search failed; the report was not recorded: %s", exc)
        raise ApiError("intake.geocoder_unavailable", status=503, headers={"Retry-After": "60"}) from exc
    if point is None:
        return data
    return data | {located.name: place | {"latitude": point.latitude, "longitude": point.longitude}}
