"""Street reports as open data, per reports procedure: a CSV file (one row per category × district ×
month), a GeoJSON file (the district polygons, each with its figures over the period as properties) and a
Frictionless Data Package that describes both (`datapackage.json`, a Table Schema for the CSV and for the
GeoJSON's properties).

The numbers are the JSON API's (`reports_api.series`): a figure withheld there is an empty cell (a null
property) here with its `_masque` column true, never the number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from shapely.geometry import mapping

from services.stats.api import From, Month
from services.stats.opendata import CACHE_CONTROL, Column, about_package, csv_cell, distribution, flag, share
from services.stats.reports_api import Code, Reporting, asked, method, series
from services.stats.reports_schemas import FinalStep, ReportSeries
from services.stats.schemas import Count
from services.stats.settings import StatsSettings
from shared.deps import CatalogueDep, Pool

router = APIRouter(prefix="/v1/stats/reports", tags=["street reports"])
CSV, GEOJSON, PACKAGE = "signalements.csv", "quartiers.geojson", "datapackage.json"
# What every figure is over, in the columns' descriptions (`opendata.py`'s are over cases, "dossiers").
REPORTS = "signalements"


def count(name: str, what: str, get: Callable[[Any], Count]) -> list[Column]:
    return [
        Column(name, "integer", f"{what}.", lambda f: get(f).n, constraints={"minimum": 0}),
        flag(name, lambda f: get(f).suppressed, of=REPORTS),
    ]


def _final(code: str) -> Callable[[Any], Count]:
    return lambda f: f.final[code]


def figure_columns(steps: list[FinalStep]) -> list[Column]:
    """The figures of a `ReportFigures`, each column's value read from it."""
    return [
        *count("recus", "Signalements reçus (comptés dans leur mois de dépôt)", lambda f: f.received),
        *(
            c
            for s in steps
            for c in count(
                f"etape_{s.code.replace('-', '_')}",
                f"Signalements entrés pour la première fois dans l'étape finale « {s.label} » (code {s.code}, "
                f"issue {s.outcome}), comptés dans le mois où ils y sont entrés",
                _final(s.code),
            )
        ),
        *distribution(
            "delai_fait",
            "Délai du dépôt au premier « service fait » (étape d'issue acceptée), compté dans le mois de ce "
            "premier « service fait »",
            lambda f: f.time_to_done,
            mean=False,
            of=REPORTS,
        ),
        *share(
            "dans_engagement",
            "Signalements faits au plus tard à la date de l'engagement de la ville, parmi ceux faits dans le mois",
            lambda f: f.done_within_commitment,
            over="signalements faits",
            of=REPORTS,
        ),
        *share(
            "confirme_regle",
            "Réponses des auteurs disant le problème vraiment réglé, parmi les réponses données dans le mois",
            lambda f: f.confirmed_fixed,
            over="réponses",
            of=REPORTS,
        ),
    ]


def open_columns() -> list[Column]:
    """The reports open now (an `OpenReports`)."""
    return [
        *count("ouverts", "Signalements ouverts maintenant, quelle que soit la période", lambda o: o.open),
        *distribution(
            "anciennete_ouverts",
            "Ancienneté des signalements ouverts maintenant",
            lambda o: o.age,
            mean=False,
            of=REPORTS,
        ),
    ]


KEYS = [
    Column("procedure", "string", "Code de la démarche.", lambda x: x[0], constraints={"required": True}),
    Column(
        "mois",
        "yearmonth",
        "Mois calendaire (heure de Paris), AAAA-MM : celui où chaque chiffre compte (voir sa description).",
        lambda x: x[1].month,
        constraints={"required": True},
    ),
    Column("categorie", "string", "Catégorie du signalement (son code).", lambda x: x[1].category),
    Column("quartier", "string", "Quartier (son code) ; vide s'il n'est pas connu.", lambda x: x[1].district),
]
PLACE_KEYS = [
    Column("quartier", "string", "Code du quartier.", lambda p: p["code"], constraints={"required": True}),
    Column("nom", "string", "Nom du quartier.", lambda p: p["names"].get("fr")),
    Column("nom_en", "string", "Nom du quartier, en anglais.", lambda p: p["names"].get("en")),
    Column("nom_ar", "string", "Nom du quartier, en arabe.", lambda p: p["names"].get("ar")),
    Column("debut", "yearmonth", "Premier mois de la période.", lambda p: p["from"]),
    Column("fin", "yearmonth", "Dernier mois de la période.", lambda p: p["to"]),
    Column("categorie", "string", "Catégorie ; vide pour toutes les catégories.", lambda p: p["category"]),
]


def csv_text(s: ReportSeries) -> str:
    figures = figure_columns(s.final_steps)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c.name for c in (*KEYS, *figures)])
    for row in s.rows:
        key = (s.procedure, row)
        writer.writerow(
            [csv_cell(v) for v in (*(c.value(key) for c in KEYS), *(c.value(row.figures) for c in figures))]
        )
    return out.getvalue()


def geojson(s: ReportSeries, reporting: Reporting) -> dict[str, Any]:
    polygons = reporting.latest.districts
    places = {p.code: p for p in s.districts}
    figures, open_ = figure_columns(s.final_steps), open_columns()
    features = []
    for district in polygons or []:
        place = places[district.code]
        keys = {
            "code": district.code,
            "names": district.names,
            "from": s.from_,
            "to": s.to,
            "category": s.category or "",
        }
        properties = {
            **{c.name: c.value(keys) for c in PLACE_KEYS},
            **{c.name: c.value(place.figures) for c in figures},
            **{c.name: c.value(place.open_now) for c in open_},
        }
        features.append(
            {
                "type": "Feature",
                "id": district.code,
                "properties": properties,
                "geometry": mapping(district.geometry),
            }
        )
    return {"type": "FeatureCollection", "name": "quartiers", "features": features}


def package(reporting: Reporting, settings: StatsSettings, built: datetime) -> dict[str, Any]:
    steps = reporting.final_steps("fr")
    return {
        "profile": "data-package",
        "name": f"suivi-signalements-{reporting.latest.code}",
        "title": f"Suites données aux signalements : {reporting.latest.title.in_('fr')}",
        **about_package(
            "Ce que la ville fait des signalements, par catégorie, quartier et mois : signalements reçus, "
            "étapes finales atteintes, délai jusqu'au « service fait », part faite dans l'engagement de la "
            "ville, part confirmée réglée par l'auteur, signalements ouverts. Une case vide dont la colonne "
            "`_masque` vaut true est un chiffre non publié.",
            ["signalements", "espace public", "voirie", "quartiers", "données ouvertes"],
            method("fr", settings.suppression_threshold, reporting),
            settings,
            built,
        ),
        "resources": [_csv_resource(steps), _geojson_resource(steps)],
    }


def _fields(columns: list[Column]) -> dict[str, Any]:
    return {"fields": [c.field() for c in columns], "missingValues": [""]}


def _csv_resource(steps: list[FinalStep]) -> dict[str, Any]:
    return {
        "name": "signalements",
        "path": CSV,
        "profile": "tabular-data-resource",
        "title": "Signalements par catégorie, quartier et mois",
        "description": "Une ligne par catégorie × quartier × mois où quelque chose s'est passé.",
        "format": "csv",
        "mediatype": "text/csv",
        "encoding": "utf-8",
        "schema": _fields([*KEYS, *figure_columns(steps)]),
    }


def _geojson_resource(steps: list[FinalStep]) -> dict[str, Any]:
    return {
        "name": "quartiers",
        "path": GEOJSON,
        "title": "Quartiers et leurs chiffres sur la période",
        "description": "Les polygones des quartiers (WGS 84), chacun avec ses chiffres sur toute la période "
        "demandée (`from`, `to`, `category` dans l'adresse ; par défaut depuis le premier signalement) : "
        "un mois seul avec from = to. `proprietes` décrit les propriétés de chaque quartier (Table Schema).",
        "format": "geojson",
        "mediatype": "application/geo+json",
        "encoding": "utf-8",
        "proprietes": _fields([*PLACE_KEYS, *figure_columns(steps), *open_columns()]),
    }


async def _series(
    request: Request, pool: Pool, catalogue: CatalogueDep, procedure: str, **asking: Any
) -> tuple[ReportSeries, Reporting]:
    settings: StatsSettings = request.app.state.settings
    now = datetime.now(UTC)
    reporting, ask = await asked(pool, catalogue, procedure, lang="fr", now=now, **asking)
    found = await series(pool, reporting, ask, lang="fr", threshold=settings.suppression_threshold, now=now)
    return found, reporting


@router.get(f"/{{procedure}}/{CSV}", response_class=Response)
async def reports_csv(
    procedure: str,
    request: Request,
    pool: Pool,
    catalogue: CatalogueDep,
    from_: From = None,
    to: Month = None,
    category: Code = None,
    district: Code = None,
) -> Response:
    """One row per category × district × month (by default from the first report to now)."""
    found, _ = await _series(
        request, pool, catalogue, procedure, from_=from_, to=to, category=category, district=district
    )
    return Response(csv_text(found), media_type="text/csv; charset=utf-8", headers=CACHE_CONTROL)


@router.get(f"/{{procedure}}/{GEOJSON}", response_class=JSONResponse)
async def reports_geojson(
    procedure: str,
    request: Request,
    pool: Pool,
    catalogue: CatalogueDep,
    from_: From = None,
    to: Month = None,
    category: Code = None,
) -> JSONResponse:
    """The districts with their figures over the period (one month: `from` = `to`)."""
    found, reporting = await _series(
        request, pool, catalogue, procedure, from_=from_, to=to, category=category, district=None
    )
    return JSONResponse(geojson(found, reporting), media_type="application/geo+json", headers=CACHE_CONTROL)


@router.get(f"/{{procedure}}/{PACKAGE}", response_class=JSONResponse)
async def reports_package(procedure: str, request: Request, catalogue: CatalogueDep) -> JSONResponse:
    """The Data Package describing the CSV and the GeoJSON of the procedure."""
    settings: StatsSettings = request.app.state.settings
    described = package(Reporting.of(catalogue, procedure), settings, datetime.now(UTC))
    return JSONResponse(described, headers=CACHE_CONTROL)
