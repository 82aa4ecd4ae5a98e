"""Places of street reports: the district a point is in (the shipped polygons), its public cell, the city's
streets turned into points, and district files that are refused with a message saying what to fix."""

from __future__ import annotations

import json
from pathlib import Path

import h3
import pytest

from shared.places import Districts, Gazetteer, PlacesError, Point, around, cell_of, distance_m
from shared.procedures import CatalogueError, load_catalogue

SHIPPED = Path(__file__).resolve().parents[2] / "procedures"
DISTRICTS = Districts.load(SHIPPED / "signalement-voirie" / "districts.geojson")
STREETS = Gazetteer.load(SHIPPED / "streets.csv")


@pytest.mark.parametrize(
    ("point", "district"),
    [
        (Point(45.7578, 4.8320), "centre"),
        (Point(45.7750, 4.8300), "nord"),
        (Point(45.7450, 4.8300), "sud"),
        (Point(45.7590, 4.8550), "est"),
        (Point(45.7590, 4.8100), "ouest"),
    ],
)
def test_a_point_is_in_the_district_whose_polygon_holds_it(point: Point, district: str) -> None:
    found = DISTRICTS.containing(point)
    assert found is not None and found.code == district


def test_a_point_outside_the_city_is_in_no_district() -> None:
    assert DISTRICTS.containing(Point(48.8566, 2.3522)) is None  # Paris
    assert DISTRICTS.containing(Point(45.7578, 4.9000)) is None  # just east of the city


def test_the_districts_tile_the_city_without_overlapping() -> None:
    geometries = [d.geometry for d in DISTRICTS]
    for i, a in enumerate(geometries):
        for b in geometries[i + 1 :]:
            assert a.intersection(b).area < 1e-12


def test_the_public_cell_is_an_h3_hexagon_of_about_a_hundred_metres() -> None:
    point = Point(45.7578, 4.8320)
    cell = cell_of(point)
    assert h3.get_resolution(cell) == 10
    assert 10_000 < h3.cell_area(cell, unit="m^2") < 20_000
    centre = Point(*h3.cell_to_latlng(cell))
    assert distance_m(point, centre) < 100


def test_distances_and_the_box_around_a_point() -> None:
    a = Point(45.7578, 4.8320)
    b = Point(45.7578 + 49 / 111_195, 4.8320)  # 49 m north
    assert distance_m(a, b) == pytest.approx(49, abs=0.5)
    south, west, north, east = around(a, 50)
    assert south < b.latitude <= north + 1e-12 and west < a.longitude < east


@pytest.mark.parametrize(
    "address",
    [
        "12 rue de la République",
        "12, Rue de la Republique",
        "12 bis rue de la république 69001 Lyon",
        "  12   RUE DE LA REPUBLIQUE ",
    ],
)
def test_an_address_is_found_however_it_is_typed(address: str) -> None:
    found = STREETS.find(address)
    assert found is not None
    assert DISTRICTS.containing(found) is not None and DISTRICTS.containing(found).code == "centre"  # type: ignore[union-attr]


def test_house_numbers_are_placed_along_the_street() -> None:
    first, last, middle = (
        STREETS.find("1 rue de la République"),
        STREETS.find("98 rue de la République"),
        STREETS.find("rue de la République"),
    )
    assert first is not None and last is not None and middle is not None
    assert distance_m(first, last) > 1000
    assert distance_m(first, middle) == pytest.approx(distance_m(middle, last), rel=0.01)


def test_an_unknown_street_is_not_found() -> None:
    assert STREETS.find("1 rue qui n'existe pas") is None
    assert STREETS.find("") is None


def _collection(*features: dict) -> dict:  # type: ignore[type-arg]
    return {"type": "FeatureCollection", "features": list(features)}


def _square(code: str, x: float = 0.0) -> dict:  # type: ignore[type-arg]
    ring = [[x, 0], [x + 1, 0], [x + 1, 1], [x, 1], [x, 0]]
    return {
        "type": "Feature",
        "properties": {"code": code, "name": {"fr": code, "en": code, "ar": code}},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ({"type": "Feature"}, "FeatureCollection"),
        (_collection(), "no district"),
        (_collection(_square("a"), _square("a", 2)), "same `code`"),
        (_collection({"type": "Feature", "properties": {"code": "a"}, "geometry": None}), "`name`"),
        (
            _collection(
                {
                    "type": "Feature",
                    "properties": {"code": "a", "name": {"fr": "a"}},
                    "geometry": {"type": "Point", "coordinates": [0, 0]},
                }
            ),
            "Polygon",
        ),
    ],
    ids=["not-a-collection", "empty", "same-code", "no-name", "a-point"],
)
def test_a_wrong_district_file_is_refused_saying_why(tmp_path: Path, content: dict, words: str) -> None:  # type: ignore[type-arg]
    path = tmp_path / "districts.geojson"
    path.write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(PlacesError, match=words):
        Districts.load(path)


def test_polygons_that_are_not_the_fields_districts_stop_the_catalogue(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "procedures"
    shutil.copytree(SHIPPED, root)
    path = root / "signalement-voirie" / "districts.geojson"
    shipped = json.loads(path.read_text(encoding="utf-8"))
    shipped["features"] = shipped["features"][:4]  # one district has no polygon
    path.write_text(json.dumps(shipped), encoding="utf-8")
    with pytest.raises(CatalogueError) as refused:
        load_catalogue(root)
    assert str(path) in str(refused.value) and "must be the districts of field location" in str(refused.value)
