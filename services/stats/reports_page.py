"""What the street reports' page shows, without I/O: the map of the figure the visitor chose, its legend,
the table beside it with the same numbers, and the tables of every figure, all from one `ReportSeries`
(the JSON API's). A suppressed figure is said to be so, never shown as 0; "–" is no report at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from markupsafe import Markup

from services.stats import reports_map
from services.stats.reports_map import Area
from services.stats.reports_schemas import Durations, Place, ReportSeries
from services.stats.schemas import Count, Share
from services.stats.web import Cell, Table, Texts
from shared.places import Districts

Figure = Count | Share | Durations


@dataclass(frozen=True)
class MapFigure:
    """A figure the map can be coloured by: its value for a place, the figure it comes from, its unit,
    and what its n counts (a plural key)."""

    key: str
    unit: str  # count, days, percent
    value: Callable[[Place], float | None]
    figure: Callable[[Place], Figure]
    over: str | None = None


def _received(p: Place) -> float | None:
    return None if p.figures.received.n is None else float(p.figures.received.n)


FIGURES = {
    f.key: f
    for f in (
        MapFigure(
            "time_to_done",
            "days",
            lambda p: p.figures.time_to_done.p50_days,
            lambda p: p.figures.time_to_done,
            "reports.over.done",
        ),
        MapFigure(
            "within_commitment",
            "percent",
            lambda p: p.figures.done_within_commitment.share,
            lambda p: p.figures.done_within_commitment,
            "reports.over.done",
        ),
        MapFigure(
            "confirmed_fixed",
            "percent",
            lambda p: p.figures.confirmed_fixed.share,
            lambda p: p.figures.confirmed_fixed,
            "reports.over.answers",
        ),
        MapFigure("received", "count", _received, lambda p: p.figures.received),
    )
}


@dataclass
class ReportsPage:
    t: Texts
    series: ReportSeries
    figure: MapFigure
    polygons: Districts
    period: str
    category: str  # its label, or "every category"
    latest_steps: list[str] = field(default_factory=list)  # the newest version's final steps

    @property
    def total(self) -> Place:
        s = self.series
        return Place(code="", name=self.t("reports.all_districts"), figures=s.total, open_now=s.open_now)

    def format(self, unit: str, value: float) -> str:
        t = self.t
        return {"days": t.days, "percent": t.percent}.get(unit, t.number)(value)

    def cell(self, figure: Figure, value: float | None, unit: str) -> Cell:
        if figure.suppressed:
            return Cell(self.t("dashboard.suppressed"), suppressed=True)
        return Cell("–" if value is None else self.format(unit, value))

    def over(self, place: Place) -> str:
        n = self.figure.figure(place).n
        if self.figure.over is None or n is None:
            return ""
        return self.t.plural(self.figure.over, n, count=self.t.number(n))

    # The map

    def area(self, place: Place) -> Area:
        t, f = self.t, self.figure
        cell = self.cell(f.figure(place), f.value(place), f.unit)
        if cell.suppressed:
            said = t("reports.map.suppressed", threshold=self.series.method.suppression_threshold)
        elif cell.text == "–":
            said = t("reports.map.no_figure")
        else:
            over = self.over(place)
            said = t("reports.map.said", figure=cell.text, over=over) if over else cell.text
        title = t("reports.map.area", district=place.name, figure=self.label, said=said)
        value = None if cell.suppressed else f.value(place)
        return Area(place.code, place.name, cell.text, title, value=value, suppressed=cell.suppressed)

    @property
    def label(self) -> str:
        return self.t(f"reports.figure.{self.figure.key}")

    def scale(self) -> reports_map.Scale:
        values = [a.value for a in self.areas().values() if a.value is not None]
        return reports_map.scale_for(values, unit=self.figure.unit)

    def areas(self) -> dict[str, Area]:
        return {p.code: self.area(p) for p in self.series.districts if self.polygons.get(p.code)}

    def map(self) -> Markup:
        return reports_map.svg(
            self.polygons,
            self.areas(),
            self.scale(),
            map_id="reports-map",
            title=self.t("reports.map.title", figure=self.label, category=self.category, period=self.period),
            description=self.t("reports.map.description"),
        )

    def legend(self) -> list[tuple[Markup, str]]:
        t, unit, bounds = self.t, self.figure.unit, self.scale().bounds()
        rows = []
        for i, (low, below) in enumerate(bounds):
            if i == 0 and below is not None:
                text = t("reports.legend.below", value=self.format(unit, below))
            elif below is None:
                text = t("reports.legend.at_least", value=self.format(unit, low))
            else:
                text = t("reports.legend.between", low=self.format(unit, low), below=self.format(unit, below))
            rows.append((reports_map.swatch(f"c{i}", hatch_id=""), text))
        threshold = self.series.method.suppression_threshold
        rows.append(
            (
                reports_map.swatch("suppressed", hatch_id="legend-hatch"),
                t("reports.legend.suppressed", threshold=threshold),
            )
        )
        rows.append((reports_map.swatch("no-figure", hatch_id=""), t("reports.legend.no_figure")))
        return rows

    # The tables

    def places(self) -> list[Place]:
        return [*self.series.districts, self.total]

    def figure_table(self) -> Table:
        """The map's figure, district by district: the same numbers as the map (days as plain numbers,
        the column says the unit)."""
        t, f = self.t, self.figure
        unit = "count" if f.unit == "days" else f.unit
        columns = [t(f"reports.short.{f.key}")]
        if f.over:
            columns.append(t("reports.col.over"))
        rows = []
        for place in self.places():
            figure = f.figure(place)
            cells = [self.cell(figure, f.value(place), unit)]
            if f.over:
                cells.append(self._n(figure, figure.n))
            rows.append((place.name, cells))
        return Table(t("reports.table.figure", figure=self.label), t("reports.col.district"), columns, rows)

    def tables(self) -> list[tuple[str, Table]]:
        """(id, table) of every figure: by district (times, what happened, confirmation and open), by
        category."""
        return [
            ("times", self._table("times", self.places(), self._times)),
            (
                "outcomes",
                self._table("outcomes", self.places(), self._outcomes, columns=self._step_columns()),
            ),
            ("confirmed", self._table("confirmed", self.places(), self._confirmed)),
            ("categories", self._table("categories", self._categories(), self._by_category, head="category")),
        ]

    def _table(
        self,
        key: str,
        places: list[Place],
        cells: Callable[[Place], list[Cell]],
        *,
        columns: list[str] | None = None,
        head: str = "district",
    ) -> Table:
        t = self.t
        names = columns or [t(f"reports.col.{c}") for c in COLUMNS[key]]
        return Table(
            t(f"reports.table.{key}"), t(f"reports.col.{head}"), names, [(p.name, cells(p)) for p in places]
        )

    def _times(self, p: Place) -> list[Cell]:
        d, share = p.figures.time_to_done, p.figures.done_within_commitment
        return [
            self._n(d, d.n),
            self.cell(d, d.p50_days, "count"),
            self.cell(d, d.p90_days, "count"),
            self.cell(share, share.share, "percent"),
            self._n(share, share.n),
        ]

    def _shown_steps(self) -> list[str]:
        """The newest version's final steps, and an older version's where it counted any report."""
        counted = {code for p in self.places() for code, c in p.figures.final.items() if c.n != 0}
        return [s.code for s in self.series.final_steps if s.code in self.latest_steps or s.code in counted]

    def _step_columns(self) -> list[str]:
        labels = {s.code: s.label for s in self.series.final_steps}
        return [self.t("reports.col.received"), *(labels[c] for c in self._shown_steps())]

    def _outcomes(self, p: Place) -> list[Cell]:
        return [self._n(p.figures.received, p.figures.received.n)] + [
            self._n(p.figures.final[c], p.figures.final[c].n) for c in self._shown_steps()
        ]

    def _confirmed(self, p: Place) -> list[Cell]:
        fixed, open_ = p.figures.confirmed_fixed, p.open_now
        return [
            self._n(fixed, fixed.n),
            self.cell(fixed, fixed.share, "percent"),
            self._n(open_.open, open_.open.n),
            self.cell(open_.age, open_.age.p50_days, "count"),
            self.cell(open_.age, open_.age.p90_days, "count"),
        ]

    def _categories(self) -> list[Place]:
        every = Place(
            code="",
            name=self.t("reports.all_categories"),
            figures=self.series.total,
            open_now=self.series.open_now,
        )
        return [p for p in self.series.categories if _anything(p)] + [every]

    def _by_category(self, p: Place) -> list[Cell]:
        f = p.figures
        return [
            self._n(f.received, f.received.n),
            self._n(f.time_to_done, f.time_to_done.n),
            self.cell(f.time_to_done, f.time_to_done.p50_days, "count"),
            self.cell(f.done_within_commitment, f.done_within_commitment.share, "percent"),
            self.cell(f.confirmed_fixed, f.confirmed_fixed.share, "percent"),
            self._n(p.open_now.open, p.open_now.open.n),
        ]

    def _n(self, figure: Figure, n: int | None) -> Cell:
        return self.cell(figure, None if n is None else float(n), "count")


COLUMNS = {
    "times": ("done", "p50", "p90", "within", "within_n"),
    "confirmed": ("answers", "fixed", "open", "age_p50", "age_p90"),
    "categories": ("received", "done", "p50", "within", "fixed", "open"),
}


def _anything(p: Place) -> bool:
    f = p.figures
    figures: list[Figure] = [
        f.received,
        f.time_to_done,
        f.confirmed_fixed,
        p.open_now.open,
        *f.final.values(),
    ]
    return any(x.n != 0 for x in figures)
