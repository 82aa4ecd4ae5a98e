"""The street reports' open data: a CSV and a GeoJSON described by a Frictionless Data Package, valid, and
holding the JSON API's numbers (a withheld one empty, with its `_masque` true)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from frictionless import Resource, Schema, validate
from nats.js import JetStreamContext

from tests.conftest import Env
from tests.stats.test_reports import API, M0, M1, M2, history, js, text

__all__ = ["js"]
PERIOD = {"from": text(M0), "to": text(M2)}


async def download(stats: httpx.AsyncClient, folder: Path, **params: str) -> dict[str, Any]:
    """The Data Package, the CSV and the GeoJSON, saved side by side as a reader would."""
    files: dict[str, Any] = {}
    for name, media in (
        ("datapackage.json", "application/json"),
        ("signalements.csv", "text/csv; charset=utf-8"),
        ("quartiers.geojson", "application/geo+json"),
    ):
        answer = await stats.get(f"{API}/{name}", params=params if name != "datapackage.json" else {})
        assert answer.status_code == 200 and answer.headers["content-type"] == media, answer.text
        (folder / name).write_bytes(answer.content)
        files[name] = answer.text
    return files


@pytest.fixture
async def files(stats: httpx.AsyncClient, js: JetStreamContext, env: Env, tmp_path: Path) -> dict[str, Any]:
    """The street history folded, then its three files over `PERIOD`, saved in `tmp_path`."""
    await history(js, env)
    return await download(stats, tmp_path, **PERIOD)


def csv_number(cell: str) -> float | None:
    return None if cell == "" else float(cell)


def json_row(figures: dict[str, Any]) -> dict[str, Any]:
    """The CSV's columns of a JSON figure set, as the CSV holds them."""
    out: dict[str, Any] = {
        "recus": figures["received"]["n"],
        "recus_masque": figures["received"]["suppressed"],
    }
    for code, c in figures["final"].items():
        out[f"etape_{code.replace('-', '_')}"], out[f"etape_{code.replace('-', '_')}_masque"] = (
            c["n"],
            c["suppressed"],
        )
    d = figures["time_to_done"]
    out |= {
        "delai_fait_n": d["n"],
        "delai_fait_p50_jours": d["p50_days"],
        "delai_fait_p90_jours": d["p90_days"],
    }
    out["delai_fait_masque"] = d["suppressed"]
    for name, key in (("dans_engagement", "done_within_commitment"), ("confirme_regle", "confirmed_fixed")):
        s = figures[key]
        out |= {f"{name}_n": s["n"], f"{name}_part": s["share"], f"{name}_masque": s["suppressed"]}
    return out


def read_cell(value: str) -> Any:
    if value in ("true", "false"):
        return value == "true"
    return csv_number(value)


async def test_the_files_validate_and_hold_the_json_numbers(
    stats: httpx.AsyncClient, files: dict[str, Any], tmp_path: Path
) -> None:
    report = validate(tmp_path / "datapackage.json")
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    package = json.loads(files["datapackage.json"])
    assert package["licenses"][0]["name"] == "etalab-2.0"
    assert (
        "« Clos » n'est pas « réglé »" in package["description"] and "service fait" in package["description"]
    )
    assert package["methode"]["suppression_threshold"] == 5

    body = (await stats.get(API, params=PERIOD)).json()
    rows = list(csv.DictReader(io.StringIO(files["signalements.csv"])))
    assert len(rows) == len(body["rows"])
    for line, expected in zip(rows, body["rows"], strict=True):
        assert (line["procedure"], line["mois"], line["categorie"], line["quartier"]) == (
            "signalement-voirie",
            expected["month"],
            expected["category"],
            expected["district"],
        )
        assert {k: read_cell(line[k]) for k in json_row(expected["figures"])} == json_row(expected["figures"])
    march = next(r for r in rows if (r["mois"], r["quartier"]) == (text(M0), "centre"))
    assert (
        march["recus"] == "10"
        and march["delai_fait_p50_jours"] == "9.0"
        and march["dans_engagement_part"] == "1.0"
    )
    april = next(r for r in rows if (r["mois"], r["quartier"]) == (text(M1), "centre"))
    assert april["etape_done"] == "" and april["etape_done_masque"] == "true"


async def test_the_geojson_is_the_district_polygons_with_the_maps_figures(
    stats: httpx.AsyncClient, files: dict[str, Any]
) -> None:
    collection = json.loads(files["quartiers.geojson"])
    assert collection["type"] == "FeatureCollection"
    features = collection["features"]
    assert [f["id"] for f in features] == ["centre", "nord", "sud", "est", "ouest"]
    # Each feature a valid GeoJSON geometry, its properties as the package's schema says.
    described = next(
        r for r in json.loads(files["datapackage.json"])["resources"] if r["name"] == "quartiers"
    )
    fields = described["proprietes"]["fields"]
    schema = Schema.from_descriptor(
        {"fields": [{"name": "type", "type": "string"}, {"name": "geometry", "type": "geojson"}, *fields]}
    )
    lines = [{"type": f["type"], "geometry": f["geometry"], **f["properties"]} for f in features]
    report = validate(Resource(data=lines, schema=schema))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    assert all(set(f["properties"]) == {x["name"] for x in fields} for f in features)

    body = (await stats.get(API, params=PERIOD)).json()
    for feature in features:
        props = feature["properties"]
        place = next(p for p in body["districts"] if p["code"] == props["quartier"])
        assert {k: props[k] for k in json_row(place["figures"])} == json_row(place["figures"])
        assert props["ouverts"] == place["open_now"]["open"]["n"]
        assert (props["debut"], props["fin"], props["categorie"]) == (text(M0), text(M2), "")
    centre = features[0]["properties"]
    assert (centre["nom"], centre["nom_en"], centre["delai_fait_p50_jours"]) == ("Centre", "Centre", 11.0)
    ouest = features[4]["properties"]
    assert ouest["recus"] is None and ouest["recus_masque"] is True

    # One month, one category: from = to.
    one = json.loads(
        (
            await stats.get(
                f"{API}/quartiers.geojson", params={"from": text(M1), "to": text(M1), "category": "eclairage"}
            )
        ).text
    )
    assert one["features"][0]["properties"]["confirme_regle_n"] == 7
    assert one["features"][0]["properties"]["categorie"] == "eclairage"


async def test_bad_parameters_of_the_files_are_a_clear_4xx(stats: httpx.AsyncClient) -> None:
    answer = await stats.get(f"{API}/signalements.csv", params={"category": "ovni", "lang": "en"})
    assert answer.status_code == 422 and "There is no category" in answer.json()["detail"]
    answer = await stats.get("/v1/stats/reports/acte-naissance/quartiers.geojson")
    assert answer.status_code == 404
    answer = await stats.get("/v1/stats/reports/acte-naissance/datapackage.json")
    assert answer.status_code == 404
