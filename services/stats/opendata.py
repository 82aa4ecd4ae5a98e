"""stats as open data: CSV files, one row per procedure × month × district (district empty: every district
together), described by a Frictionless Data Package (`datapackage.json`, a Table Schema per file).

The numbers are those of the JSON API, built by the same `report.Figures` from the same aggregates: a
figure withheld there is an empty cell here with its `_masque` column true, never the number.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from services.stats import domain, queries
from services.stats.api import method
from services.stats.report import CHANNELS, RATINGS, Figures, periods
from services.stats.reports_schemas import Durations, ReportMethod
from services.stats.schemas import (
    Count,
    Distribution,
    Method,
    OpenDataFile,
    OpenDataIndex,
    PeriodFigures,
    Share,
)
from services.stats.settings import StatsSettings
from shared.deps import CatalogueDep, Pool
from shared.http import ApiError
from shared.procedures import Catalogue

router = APIRouter(prefix="/v1/stats/open-data", tags=["open data"])
PACKAGE = "datapackage.json"
# The files are built together and kept this long: the figures move with the stream, not by the second.
FRESH_SECONDS = 60
CACHE_CONTROL = {"Cache-Control": f"public, max-age={FRESH_SECONDS}"}
LICENCES = {
    "etalab-2.0": {
        "name": "etalab-2.0",
        "title": "Licence Ouverte / Open Licence version 2.0",
        "path": "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
    },
    "ODbL-1.0": {
        "name": "ODbL-1.0",
        "title": "Open Data Commons Open Database License (ODbL) 1.0",
        "path": "https://opendatacommons.org/licenses/odbl/1-0/",
    },
}
CHANNEL_NAMES = {"web": "en_ligne", "counter": "guichet", "phone": "telephone", "mail": "courrier"}
DECISION_NAMES = {
    "accepted": ("acceptes", "acceptés"),
    "rejected": ("refuses", "refusés"),
    "tacit-acceptance": ("acceptes_tacitement", "acceptés tacitement (le silence de la mairie vaut accord)"),
    "tacit-rejection": ("refuses_tacitement", "refusés tacitement (le silence de la mairie vaut refus)"),
    "closed": ("clos_sans_decision", "clos sans décision (retirés ou classés)"),
}


@dataclass(frozen=True)
class Row:
    procedure: str
    district: str
    month: date
    figures: PeriodFigures


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    value: Callable[[Any], object]
    unit: str | None = None
    constraints: dict[str, object] = field(default_factory=dict)

    def field(self) -> dict[str, object]:
        described: dict[str, object] = {"name": self.name, "type": self.type, "description": self.description}
        if self.type == "yearmonth":
            described["format"] = "default"
        if self.unit:
            described["unit"] = self.unit
        if self.constraints:
            described["constraints"] = self.constraints
        return described


def count(name: str, what: str, get: Callable[[Any], Count]) -> list[Column]:
    return [
        Column(
            name, "integer", f"Nombre de dossiers {what}.", lambda f: get(f).n, constraints={"minimum": 0}
        ),
        flag(name, lambda f: get(f).suppressed),
    ]


def distribution(
    name: str,
    what: str,
    get: Callable[[Any], Distribution | Durations],
    *,
    mean: bool = True,
    of: str = "dossiers",
) -> list[Column]:
    """Durations in days over `n` of what `of` names (cases, or street reports): the median, the 90th
    percentile, the mean if `mean` (a `Distribution` has one, a street report's `Durations` not), and
    whether they are withheld."""

    def days(suffix: str, text: str, value: Callable[[Any], float | None]) -> Column:
        return Column(
            f"{name}_{suffix}_jours",
            "number",
            f"{what} : {text}, en jours.",
            lambda f: value(get(f)),
            unit="jour",
            constraints={"minimum": 0},
        )

    return [
        Column(f"{name}_n", "integer", f"{what} : nombre de {of} mesurés.", lambda f: get(f).n),
        days("p50", "médiane", lambda d: d.p50_days),
        days("p90", f"90e centile (9 {of} sur 10 en moins)", lambda d: d.p90_days),
        *([days("moyenne", "moyenne", lambda d: d.mean_days)] if mean else []),
        flag(name, lambda f: get(f).suppressed, of=of),
    ]


def share(
    name: str, what: str, get: Callable[[Any], Share], *, over: str = "dossiers", of: str = "dossiers"
) -> list[Column]:
    """A share of `over` (the cases, or the street reports done, or the answers), and whether it is
    withheld for too few of what `of` names."""
    return [
        Column(
            f"{name}_n",
            "integer",
            f"{what} : nombre de {over} sur lequel la part porte.",
            lambda f: get(f).n,
        ),
        Column(
            f"{name}_part",
            "number",
            f"{what} : part, de 0 à 1.",
            lambda f: get(f).share,
            unit="proportion",
            constraints={"minimum": 0, "maximum": 1},
        ),
        flag(name, lambda f: get(f).suppressed, of=of),
    ]


def flag(name: str, value: Callable[[Any], bool], *, of: str = "dossiers") -> Column:
    """`{name}_masque`: whether the figure is withheld, over too few of what `of` names."""
    return Column(
        f"{name}_masque",
        "boolean",
        f"true si « {name} » porte sur trop peu de {of} pour être publié : les cases sont alors vides.",
        value,
    )


KEYS = [
    Column("procedure", "string", "Code de la démarche (voir demarches.csv).", lambda r: r.procedure),
    Column("mois", "yearmonth", "Mois calendaire (heure de Paris), AAAA-MM.", lambda r: f"{r.month:%Y-%m}"),
    Column("quartier", "string", "Quartier ; vide pour tous les quartiers ensemble.", lambda r: r.district),
]


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    description: str
    columns: list[Column]

    @property
    def path(self) -> str:
        return f"{self.name}.csv"

    def records(self, rows: list[Row], catalogue: Catalogue) -> Iterator[list[object]]:
        own = self.columns[len(KEYS) :]
        for row in rows:
            yield [*(c.value(row) for c in KEYS), *(c.value(row.figures) for c in own)]

    def resource(self) -> dict[str, object]:
        schema: dict[str, object] = {"fields": [c.field() for c in self.columns], "missingValues": [""]}
        if self.name != "demarches":
            schema["foreignKeys"] = [
                {"fields": "procedure", "reference": {"resource": "demarches", "fields": "code"}}
            ]
        return {
            "name": self.name,
            "path": self.path,
            "profile": "tabular-data-resource",
            "title": self.title,
            "description": self.description,
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "schema": schema,
        }


@dataclass(frozen=True)
class StepFigure:
    step: str
    label: str
    figure: Distribution


class StepTable(Table):
    """One row per procedure × month × district × step the cases left that month."""

    def records(self, rows: list[Row], catalogue: Catalogue) -> Iterator[list[object]]:
        own = self.columns[len(KEYS) :]
        for row in rows:
            procedure = catalogue.latest(row.procedure)
            steps = procedure.steps_by_code if procedure else {}
            for step, figure in row.figures.steps.items():
                label = steps[step].label.in_("fr") if step in steps else ""
                yield [
                    *(c.value(row) for c in KEYS),
                    *(c.value(StepFigure(step, label, figure)) for c in own),
                ]


class ProcedureTable(Table):
    """One row per procedure: its title and legal deadline."""

    def records(self, rows: list[Row], catalogue: Catalogue) -> Iterator[list[object]]:
        for procedure in catalogue.all_latest():
            yield [c.value(procedure) for c in self.columns]


def _decided(kind: str) -> Callable[[PeriodFigures], Count]:
    return lambda f: f.decided[kind]


def _channel(channel: str) -> Callable[[PeriodFigures], Count]:
    return lambda f: f.channels[channel]


def _rating(rating: str) -> Column:
    return Column(
        f"note_{rating}",
        "integer",
        f"Nombre d'avis donnant la note {rating} sur 5.",
        lambda f: f.satisfaction.counts[rating] if f.satisfaction.counts else None,
        constraints={"minimum": 0},
    )


TABLES = {
    t.name: t
    for t in [
        ProcedureTable(
            "demarches",
            "Démarches",
            "Les démarches publiées, leur intitulé et leur délai légal.",
            [
                Column(
                    "code",
                    "string",
                    "Code de la démarche.",
                    lambda p: p.code,
                    constraints={"required": True, "unique": True},
                ),
                Column("libelle", "string", "Intitulé en français.", lambda p: p.title.in_("fr")),
                Column("libelle_en", "string", "Intitulé en anglais.", lambda p: p.title.in_("en")),
                Column(
                    "delai_legal_mois",
                    "integer",
                    "Délai légal : mois (vide s'il n'y en a pas).",
                    lambda p: p.legal_deadline.months if p.legal_deadline else None,
                    unit="mois",
                ),
                Column(
                    "delai_legal_jours",
                    "integer",
                    "Délai légal : jours, en plus des mois (vide s'il n'y en a pas).",
                    lambda p: p.legal_deadline.days if p.legal_deadline else None,
                    unit="jour",
                ),
            ],
        ),
        Table(
            "delais",
            "Délais de décision",
            "Par mois de décision : délai écoulé et délai légal entre le dépôt et la décision, et part des "
            "dossiers décidés dans le délai légal.",
            [
                *KEYS,
                *distribution(
                    "delai_ecoule",
                    "Délai écoulé (jours calendaires du dépôt à la décision)",
                    lambda f: f.time_to_decision.elapsed,
                ),
                *distribution(
                    "delai_legal",
                    "Délai légal (délai écoulé moins l'attente du citoyen)",
                    lambda f: f.time_to_decision.legal,
                ),
                *share(
                    "dans_delai_legal",
                    "Dossiers décidés au plus tard à l'échéance légale",
                    lambda f: f.within_legal_deadline,
                ),
            ],
        ),
        Table(
            "volumes",
            "Volumes et stock",
            "Dossiers déposés par mois et par canal, décidés par mois et par issue, et stock de dossiers "
            "encore ouverts à la fin du mois (ou maintenant, pour le mois en cours) avec leur ancienneté.",
            [
                *KEYS,
                *count("deposes", "déposés dans le mois", lambda f: f.submitted),
                *(
                    c
                    for ch in CHANNELS
                    for c in count(
                        f"deposes_{CHANNEL_NAMES[ch]}",
                        f"déposés dans le mois par le canal {CHANNEL_NAMES[ch]}",
                        _channel(ch),
                    )
                ),
                *share("part_en_ligne", "Part des dépôts faits en ligne", lambda f: f.digital_share),
                *(
                    c
                    for kind, (name, what) in DECISION_NAMES.items()
                    for c in count(f"decides_{name}", f"décidés dans le mois : {what}", _decided(kind))
                ),
                *count("ouverts_fin_de_mois", "encore ouverts à la fin du mois", lambda f: f.backlog.open),
                *distribution(
                    "anciennete_stock",
                    "Ancienneté des dossiers ouverts à la fin du mois",
                    lambda f: f.backlog.age,
                    mean=False,
                ),
            ],
        ),
        StepTable(
            "etapes",
            "Temps passé à chaque étape",
            "Par mois de sortie de l'étape : combien de temps les dossiers sont restés à chaque étape.",
            [
                *KEYS,
                Column("etape", "string", "Code de l'étape.", lambda s: s.step),
                Column("etape_libelle", "string", "Intitulé de l'étape, en français.", lambda s: s.label),
                *distribution("duree", "Temps passé à l'étape", lambda s: s.figure),
            ],
        ),
        Table(
            "satisfaction",
            "Satisfaction",
            "Par mois où l'avis a été donné : nombre d'avis par note (1 à 5) et note moyenne.",
            [
                *KEYS,
                Column(
                    "avis_n",
                    "integer",
                    "Nombre d'avis.",
                    lambda f: f.satisfaction.n,
                    constraints={"minimum": 0},
                ),
                *(_rating(r) for r in RATINGS),
                Column(
                    "note_moyenne",
                    "number",
                    "Note moyenne, de 1 à 5.",
                    lambda f: f.satisfaction.mean,
                    constraints={"minimum": 1, "maximum": 5},
                ),
                flag("avis", lambda f: f.satisfaction.suppressed),
            ],
        ),
    ]
}


async def month_series(
    pool: asyncpg.Pool, *, procedure: str, district: str, months: list[date], threshold: int, now: datetime
) -> list[PeriodFigures]:
    """The figures of each month, exactly as `GET /v1/stats/procedures/{code}` publishes them."""
    shown = periods(months, "month")
    data = await queries.aggregates(pool, procedure=procedure, district=district, periods=shown, now=now)
    figures = Figures(data, threshold=threshold)
    return [figures.period(p) for p in shown]


async def _districts(pool: asyncpg.Pool, procedure: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT DISTINCT district FROM stats.counts WHERE procedure = $1 ORDER BY district", procedure
    )
    return [row["district"] for row in rows]


async def _rows(pool: asyncpg.Pool, catalogue: Catalogue, *, threshold: int, now: datetime) -> list[Row]:
    """Every procedure, from its first month to the month under way, every district and all together."""
    rows: list[Row] = []
    for code in catalogue.codes():
        first = await queries.first_month(pool, code)
        if first is None:
            continue
        months = domain.months_between(first, domain.month_of(now))
        for district in await _districts(pool, code):
            series = await month_series(
                pool, procedure=code, district=district, months=months, threshold=threshold, now=now
            )
            rows += [Row(code, district, month, f) for month, f in zip(months, series, strict=True)]
    return rows


def _csv(table: Table, rows: list[Row], catalogue: Catalogue) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c.name for c in table.columns])
    for record in table.records(rows, catalogue):
        writer.writerow([csv_cell(v) for v in record])
    return out.getvalue()


def csv_cell(value: object) -> str:
    """A value as the CSV files write it: empty for none (a withheld figure), true or false for a flag."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def about_package(
    intro: str, keywords: list[str], how: Method | ReportMethod, settings: StatsSettings, built: datetime
) -> dict[str, Any]:
    """What each of stats' Data Packages says of itself (this one's, `reports_opendata.package`'s): its
    description (`intro`, then the method's texts), when it was built, its licence, its keywords and its
    method."""
    return {
        "description": "\n\n".join([intro, *how.texts()]),
        "created": built.isoformat(timespec="seconds"),
        "licenses": [LICENCES[settings.open_data_licence]],
        "keywords": keywords,
        "methode": how.model_dump(),
    }


def package(settings: StatsSettings, built: datetime) -> dict[str, Any]:
    return {
        "profile": "tabular-data-package",
        "name": "suivi-delais-des-demarches",
        "title": "Délais réels des démarches de la mairie",
        **about_package(
            "Combien de temps prennent vraiment les démarches : délais de décision, volumes, stock de "
            "dossiers ouverts, temps passé à chaque étape et satisfaction, par démarche, mois et quartier "
            "(quartier vide : tous les quartiers ensemble). Durées en jours. Une case vide dont la colonne "
            "`_masque` vaut true est un chiffre non publié.",
            ["délais", "démarches administratives", "mairie", "données ouvertes"],
            method("fr", settings.suppression_threshold),
            settings,
            built,
        ),
        "resources": [table.resource() for table in TABLES.values()],
    }


@dataclass
class Files:
    built_at: float
    texts: dict[str, str]
    rows: dict[str, int]


class OpenData:
    """The files of one build, built again when older than `FRESH_SECONDS`, by one request at a time."""

    def __init__(self) -> None:
        self._files: Files | None = None
        self._lock = asyncio.Lock()

    async def files(self, settings: StatsSettings, pool: asyncpg.Pool, catalogue: Catalogue) -> Files:
        async with self._lock:
            if self._files is None or time.monotonic() - self._files.built_at > FRESH_SECONDS:
                self._files = await self._build(settings, pool, catalogue)
            return self._files

    async def _build(self, settings: StatsSettings, pool: asyncpg.Pool, catalogue: Catalogue) -> Files:
        now = datetime.now(UTC)
        rows = await _rows(pool, catalogue, threshold=settings.suppression_threshold, now=now)
        texts = {t.path: _csv(t, rows, catalogue) for t in TABLES.values()}
        counts = {path: text.count("\n") - 1 for path, text in texts.items()}
        texts[PACKAGE] = json.dumps(package(settings, now), ensure_ascii=False, indent=2) + "\n"
        return Files(built_at=time.monotonic(), texts=texts, rows=counts)


async def _files(request: Request, pool: asyncpg.Pool, catalogue: Catalogue) -> Files:
    state = request.app.state
    if not hasattr(state, "open_data"):
        state.open_data = OpenData()
    open_data: OpenData = state.open_data
    return await open_data.files(state.settings, pool, catalogue)


@router.get("/", response_model=OpenDataIndex)
async def index(request: Request, pool: Pool, catalogue: CatalogueDep) -> JSONResponse:
    """The CSV files and the Data Package (`datapackage.json`) that describes them."""
    files = await _files(request, pool, catalogue)
    settings: StatsSettings = request.app.state.settings
    body = OpenDataIndex(
        datapackage=f"{router.prefix}/{PACKAGE}",
        licence=LICENCES[settings.open_data_licence]["title"],
        files=[
            OpenDataFile(
                name=t.name,
                url=f"{router.prefix}/{t.path}",
                title=t.title,
                description=t.description,
                rows=files.rows[t.path],
            )
            for t in TABLES.values()
        ],
    )
    return JSONResponse(body.model_dump(), headers=CACHE_CONTROL)


@router.get("/{name}", response_class=Response)
async def open_data_file(name: str, request: Request, pool: Pool, catalogue: CatalogueDep) -> Response:
    """One CSV file (`delais.csv`, `volumes.csv`...) or `datapackage.json`."""
    known = [PACKAGE, *(t.path for t in TABLES.values())]
    if name not in known:
        raise ApiError("stats.open_data.unknown_file", status=404, name=name, available=", ".join(known))
    files = await _files(request, pool, catalogue)
    media = "application/json" if name == PACKAGE else "text/csv; charset=utf-8"
    return Response(files.texts[name], media_type=media, headers=CACHE_CONTROL)
