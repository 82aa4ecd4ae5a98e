"""Places of street reports: the district that contains a point, its coarse public grid cell, distances,
and turning an address into a point.

What is public of a place is its district and its H3 cell (about 100 m across); the exact point and the
address stay in intake. Districts are polygons shipped beside a procedure (`districts.geojson`, a GeoJSON
FeatureCollection whose features carry a `code` and a `name` per language); containment is shapely's.
Addresses become points through a `Geocoder`: the city's own street list (`Gazetteer`, offline, used by
`make run` and the tests) or the national address API (`AddressApi`, for production).
"""

from __future__ import annotations

import csv
import json
import math
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import h3
import httpx
from shapely import STRtree
from shapely.geometry import Point as ShapelyPoint
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

# H3 resolution 10: hexagons of about 15,000 m², 130 m across; coarse enough to name no house.
CELL_RESOLUTION = 10
EARTH_RADIUS_M = 6_371_008.8


class PlacesError(ValueError):
    """A district file or a gazetteer is wrong; the message says what to fix."""


@dataclass(frozen=True)
class Point:
    latitude: float
    longitude: float


def cell_of(point: Point) -> str:
    """The public grid cell of a point (an H3 index at `CELL_RESOLUTION`)."""
    return str(h3.latlng_to_cell(point.latitude, point.longitude, CELL_RESOLUTION))


def distance_m(a: Point, b: Point) -> float:
    """Great-circle distance in metres (haversine): exact enough at the scale of a street."""
    p1, p2 = math.radians(a.latitude), math.radians(b.latitude)
    dp, dl = p2 - p1, math.radians(b.longitude - a.longitude)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def around(point: Point, metres: float) -> tuple[float, float, float, float]:
    """A latitude/longitude box holding every point within `metres`: (south, west, north, east)."""
    dlat = math.degrees(metres / EARTH_RADIUS_M)
    dlon = math.degrees(metres / (EARTH_RADIUS_M * max(math.cos(math.radians(point.latitude)), 1e-6)))
    return point.latitude - dlat, point.longitude - dlon, point.latitude + dlat, point.longitude + dlon


@dataclass(frozen=True)
class District:
    code: str
    names: dict[str, str]
    geometry: BaseGeometry

    def name(self, lang: str) -> str:
        return self.names.get(lang) or self.names.get("fr") or self.code


class Districts:
    """A city's district polygons, from a GeoJSON FeatureCollection (WGS 84 longitude/latitude)."""

    def __init__(self, districts: Sequence[District], geojson: dict[str, Any]) -> None:
        self._districts = list(districts)
        self._tree = STRtree([d.geometry for d in self._districts])
        self.geojson = geojson

    @classmethod
    def load(cls, path: Path) -> Districts:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PlacesError(f"not UTF-8 JSON: {exc}") from exc
        if not isinstance(raw, dict) or raw.get("type") != "FeatureCollection":
            raise PlacesError("a district file is a GeoJSON FeatureCollection")
        districts = []
        for i, feature in enumerate(raw.get("features") or []):
            props = feature.get("properties") or {}
            code, names = props.get("code"), props.get("name")
            if not isinstance(code, str) or not isinstance(names, dict):
                raise PlacesError(f"feature {i}: needs properties `code` and `name` (one per language)")
            try:
                geometry = shape(feature["geometry"])
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise PlacesError(f"feature {i} ({code}): not a GeoJSON geometry: {exc}") from exc
            if geometry.geom_type not in ("Polygon", "MultiPolygon") or not geometry.is_valid:
                raise PlacesError(f"feature {i} ({code}): a district is a valid Polygon or MultiPolygon")
            districts.append(District(code=code, names=names, geometry=geometry))
        if not districts:
            raise PlacesError("the FeatureCollection has no district")
        codes = [d.code for d in districts]
        if len(set(codes)) != len(codes):
            raise PlacesError("two districts have the same `code`")
        return cls(districts, raw)

    @property
    def codes(self) -> list[str]:
        return [d.code for d in self._districts]

    def __iter__(self) -> Iterator[District]:
        return iter(self._districts)

    def get(self, code: str) -> District | None:
        return next((d for d in self._districts if d.code == code), None)

    def containing(self, point: Point) -> District | None:
        """The district a point lies in (on a shared border, the first listed), or None outside the city."""
        p = ShapelyPoint(point.longitude, point.latitude)
        hits = sorted(int(i) for i in self._tree.query(p, predicate="intersects"))
        return self._districts[hits[0]] if hits else None

    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) of every district together."""
        boxes = [d.geometry.bounds for d in self._districts]
        return (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )


def _plain(text: str) -> str:
    """Lower case, no accents, no punctuation, single spaces: how street names are compared."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^a-z0-9]+", " ", letters).split())


class Geocoder(Protocol):
    async def locate(self, address: str) -> Point | None:
        """The point of an address in the city, or None when it cannot be found."""
        ...


@dataclass(frozen=True)
class Street:
    name: str
    start: Point
    end: Point
    first_number: int
    last_number: int

    def at(self, number: int | None) -> Point:
        """A house number's point, interpolated along the street (its middle without a number)."""
        span = self.last_number - self.first_number
        if number is None or span <= 0:
            share = 0.5
        else:
            share = min(max((number - self.first_number) / span, 0.0), 1.0)
        return Point(
            self.start.latitude + share * (self.end.latitude - self.start.latitude),
            self.start.longitude + share * (self.end.longitude - self.start.longitude),
        )


_NUMBER = re.compile(r"^\s*(\d{1,4})\s*(?:bis|ter|quater|[a-d])?\b[\s,]*", re.IGNORECASE)
_POSTCODE_AND_CITY = re.compile(r"[\s,]+\d{5}\b.*$")


class Gazetteer:
    """The city's streets, from a CSV (`name,start_lat,start_lon,end_lat,end_lon,first_number,last_number`):
    an address is its house number and street name, compared without accents, case or punctuation."""

    def __init__(self, streets: Sequence[Street]) -> None:
        self._streets = {_plain(s.name): s for s in streets}

    @classmethod
    def load(cls, path: Path) -> Gazetteer:
        try:
            with path.open(encoding="utf-8", newline="") as f:
                streets = [
                    Street(
                        name=row["name"],
                        start=Point(float(row["start_lat"]), float(row["start_lon"])),
                        end=Point(float(row["end_lat"]), float(row["end_lon"])),
                        first_number=int(row["first_number"]),
                        last_number=int(row["last_number"]),
                    )
                    for row in csv.DictReader(f)
                ]
        except (OSError, KeyError, ValueError) as exc:
            raise PlacesError(f"{path}: not a street list ({exc})") from exc
        return cls(streets)

    def find(self, address: str) -> Point | None:
        text = _POSTCODE_AND_CITY.sub("", address)
        number = None
        if match := _NUMBER.match(text):
            number, text = int(match.group(1)), text[match.end() :]
        street = self._streets.get(_plain(text))
        return street.at(number) if street else None

    async def locate(self, address: str) -> Point | None:
        return self.find(address)

    def names(self) -> list[str]:
        return sorted(s.name for s in self._streets.values())


class AddressApi:
    """The national address API (Géoplateforme geocoding, BAN data): one best match within the city's
    INSEE code, kept only when its score is at least `min_score`."""

    def __init__(self, http: httpx.AsyncClient, *, url: str, citycode: str, min_score: float = 0.6) -> None:
        self._http, self._url, self._citycode, self._min_score = http, url, citycode, min_score

    async def locate(self, address: str) -> Point | None:
        answer = await self._http.get(
            self._url, params={"q": address, "citycode": self._citycode, "limit": 1}, timeout=5
        )
        answer.raise_for_status()
        features = answer.json().get("features") or []
        if not features or float(features[0]["properties"].get("score", 0)) < self._min_score:
            return None
        lon, lat = features[0]["geometry"]["coordinates"]
        return Point(float(lat), float(lon))
