"""The street reports' page: a map of the districts (one path each, coloured by the figure chosen, hatched
when suppressed), the same numbers in the table beside it as in the JSON API, every figure in tables,
the method, in French, English and Arabic, and a clear 4xx for a parameter that names nothing."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext

from services.stats import reports_map
from services.stats.web import Texts
from shared.places import Districts
from tests.conftest import Env
from tests.stats.test_dashboard import table
from tests.stats.test_reports import API, PROCEDURE, history, js

__all__ = ["js"]
PAGE = "/statistiques/signalements"
DISTRICTS = Districts.load(Path(__file__).parents[2] / "procedures" / PROCEDURE / "districts.geojson")


def paths(html: str) -> dict[str, str]:
    """The map's polygons: {district: its class}."""
    svg = html[html.index('<svg xmlns="http://www.w3.org/2000/svg" class="district-map"') :]
    svg = svg[: svg.index("</svg>")]
    return {
        code: css
        for css, code in re.findall(r'<path class="area ([a-z0-9-]+)" data-district="([a-z]+)"', svg)
    }


async def json_of(stats: httpx.AsyncClient, lang: str = "fr", **params: str) -> dict[str, Any]:
    page = await stats.get(PAGE, params={"lang": lang, **params})
    assert page.status_code == 200, page.text
    link = re.search(r'href="(/v1/stats/reports/[^"?]+)\?([^"]+)"', page.text)
    assert link is not None
    query = dict(p.split("=", 1) for p in link.group(2).replace("&amp;", "&").split("&"))
    body: dict[str, Any] = (await stats.get(API, params={k: v for k, v in query.items() if v})).json()
    return body


async def test_the_map_has_a_path_per_district_coloured_by_the_figure_and_the_table_says_the_same(
    stats: httpx.AsyncClient, js: JetStreamContext, env: Env
) -> None:
    await history(js, env)
    page = (await stats.get(PAGE, params={"lang": "fr"})).text
    assert paths(page) == {
        "centre": "c2",
        "nord": "no-figure",
        "sud": "no-figure",
        "est": "no-figure",
        "ouest": "suppressed",
    }
    assert page.count("<path ") == len(DISTRICTS.codes)
    # The figure's own table, beside the map: the same numbers as the JSON API, the same withheld ones.
    body = await json_of(stats)
    t = Texts("fr")
    beside = table(page, "Délai médian jusqu'à « intervention faite », par quartier")
    centre = next(p for p in body["districts"] if p["code"] == "centre")["figures"]["time_to_done"]
    assert beside["Quartier"] == ["Délai médian (jours)", "Sur"]
    assert beside["Centre"] == [t.number(centre["p50_days"]), t.number(centre["n"])] == ["11", "10"]
    assert beside["Ouest"] == ["masqué", "masqué"] and beside["Est"] == ["–", "0"]
    assert (
        "<title>Ouest – Délai médian jusqu'à « intervention faite » : masqué (moins de 5 signalements)</title>"
        in page.replace("&#39;", "'")
    )
    assert "Centre – Délai médian jusqu" in page and "11 jours, sur 10 signalements faits</title>" in page
    # Every district labelled on the map, whatever its figure.
    labels = page[page.index('<g class="labels"') :]
    for name in ("Centre", "Nord", "Sud", "Est", "Ouest"):
        assert f">{name}</tspan>" in labels

    received = (await stats.get(PAGE, params={"lang": "en", "figure": "received"})).text
    # 10, 6 and 5 reports: classes of 5 (0-5, 5-10, 10-15, 15 and more); 3 and 1 are withheld.
    assert paths(received) == {
        "centre": "c2",
        "nord": "suppressed",
        "sud": "c1",
        "est": "c1",
        "ouest": "suppressed",
    }
    beside = table(received, "Reports received, by district")
    assert (
        beside["Centre"] == ["10"] and beside["North"] == ["withheld"] and beside["All districts"] == ["25"]
    )
    assert (
        "under 5" in received
        and "15 or more" in received
        and "hatched: withheld, fewer than 5 reports" in received
    )

    shares = (await stats.get(PAGE, params={"lang": "en", "figure": "within_commitment"})).text
    assert paths(shares)["centre"] == "c3"  # 80 %: the top quarter
    assert "75% or more" in shares and "under 25%" in shares


async def test_every_figure_is_in_a_table_with_the_json_numbers(
    stats: httpx.AsyncClient, js: JetStreamContext, env: Env
) -> None:
    await history(js, env)
    page = (await stats.get(PAGE, params={"lang": "fr"})).text
    body = await json_of(stats)
    times = table(page, "Délai jusqu'à « intervention faite » et engagement, par quartier")
    assert times["Centre"] == ["10", "11", "35", "80 %", "10"]
    assert times["Tous les quartiers"][0] == str(body["total"]["time_to_done"]["n"])
    outcomes = table(page, "Ce que deviennent les signalements, par quartier")
    header = outcomes["Quartier"]
    assert header[:5] == [
        "Reçus",
        "Intervention faite (service fait)",
        "Transmis à l'organisme compétent",
        "Aucune intervention nécessaire",
        "Déjà signalé",
    ]
    # Version 1's "resolved" counted one report: its column is shown; its other final steps are not.
    assert header[5:] == ["Problème résolu"]
    assert outcomes["Sud"] == ["6", "0", "0", "masqué", "masqué", "0"]
    assert outcomes["Tous les quartiers"] == ["25", "10", "masqué", "masqué", "masqué", "masqué"]
    confirmed = table(page, "Confirmation par les auteurs et signalements ouverts, par quartier")
    assert confirmed["Centre"][:3] == ["8", "87,5 %", "0"]
    assert confirmed["Est"][:2] == ["0", "–"] and confirmed["Est"][2] == "5"
    by_category = table(page, "Par catégorie")
    assert (
        by_category["Éclairage public"][0] == "11" and "Harcèlement dans l'espace public" not in by_category
    )


async def test_the_page_reads_in_arabic_right_to_left_and_links_its_data(
    stats: httpx.AsyncClient, js: JetStreamContext, env: Env
) -> None:
    await history(js, env)
    page = await stats.get(PAGE, params={"lang": "ar"})
    assert page.status_code == 200 and '<html lang="ar" dir="rtl">' in page.text
    assert "reports." not in re.sub(r'(href|id|class|for|name)="[^"]*"', "", page.text).replace(
        "reports.css", ""
    )
    for link in ("signalements.csv?", "quartiers.geojson?", "datapackage.json"):
        assert link in page.text
    assert "<script" not in page.text
    ids = re.findall(r'\sid="([^"]+)"', page.text)
    assert len(ids) == len(set(ids))
    dashboard = (await stats.get("/statistiques", params={"lang": "en"})).text
    assert 'href="/statistiques/signalements?lang=en"' in dashboard


async def test_a_parameter_that_names_nothing_is_said_so_with_a_4xx(stats: httpx.AsyncClient) -> None:
    for params, said in (
        ({"figure": "beauty"}, 'There is no figure "beauty"'),
        ({"category": "ufo"}, 'There is no category "ufo"'),
        ({"months": "7"}, 'The period "7" is not offered'),
        ({"figure": "x" * 5000}, "There is no figure"),
    ):
        answer = await stats.get(PAGE, params={"lang": "en", **params})
        assert answer.status_code == 400 and said in answer.text.replace("&#34;", '"'), params
        assert 'class="district-map"' in answer.text  # the defaults, still shown
    unknown = await stats.get(PAGE, params={"lang": "fr", "procedure": "permis-construire"})
    assert unknown.status_code == 404 and "Il n'y a pas de démarche de signalement" in unknown.text.replace(
        "&#39;", "'"
    )


def test_the_scale_has_round_steps_and_a_district_with_holes_is_one_path() -> None:
    assert reports_map.scale_for([11.0], unit="days").step == 5
    assert reports_map.scale_for([10, 6, 5], unit="count").step == 5
    assert reports_map.scale_for([2], unit="count").step == 1
    assert reports_map.scale_for([], unit="days").step == 1
    assert reports_map.scale_for([0.9], unit="percent").class_of(0.9) == 3
    assert reports_map.Scale(5).class_of(5) == 1 and reports_map.Scale(5).class_of(100) == 3
    projection = reports_map.Projection(DISTRICTS)
    west, south, east, north = DISTRICTS.bounds()
    assert projection.point(west, north) == (reports_map.PADDING, reports_map.PADDING)
    # Equirectangular, a degree of longitude shortened by the cosine of the middle latitude.
    x, y = projection.point(east, south)
    ratio = (north - south) / ((east - west) * math.cos(math.radians((north + south) / 2)))
    assert (y - reports_map.PADDING) / (x - reports_map.PADDING) == pytest.approx(ratio)
    assert x == pytest.approx(reports_map.WIDTH - reports_map.PADDING)
