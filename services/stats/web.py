"""stats' public dashboard: how long each procedure really takes, month by month, readable without JavaScript.

The figures are those of the JSON API (`report.Figures` over the same aggregates, the same windows as
`GET /v1/stats/procedures`). Each section is declared as data (`SECTIONS`): the measures it charts and
tabulates. The charts are Vega-Lite specifications drawn as SVG on the server (`charts.py`), each with its
data as a table and a sentence of method. A suppressed figure is said to be so, never drawn. Every word
comes from `shared/locales/` (`dashboard.*`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from services.stats import charts, domain, queries
from services.stats.api import method
from services.stats.opendata import LICENCES
from services.stats.report import Figures, Period, periods
from services.stats.schemas import Count, Distribution, PeriodFigures, Satisfaction, Share
from services.stats.settings import StatsSettings
from shared.deps import CatalogueDep, Pool
from shared.http import language_of
from shared.i18n import languages, translate
from shared.pages import Texts as PageTexts
from shared.pages import page_templates
from shared.procedures import Procedure

HERE = Path(__file__).parent
STATIC = "/static-stats"
WINDOWS = (12, 24)
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "Vary": "Accept-Language",
    "Cache-Control": "public, max-age=300",
}

router = APIRouter(include_in_schema=False)
templates = page_templates(HERE / "templates")
Figure = Count | Share | Distribution | Satisfaction


def static_files() -> StaticFiles:
    return StaticFiles(directory=HERE / "static")


class Texts(PageTexts):
    """The page's words and numbers in one language; templates call it `t`."""

    def number(self, value: float) -> str:
        text = f"{value:,.1f}" if round(value, 1) % 1 else f"{value:,.0f}"
        marks: dict[str, str | int | None] = {
            ",": self("dashboard.number.thousands"),
            ".": self("dashboard.number.decimal"),
        }
        return text.translate(str.maketrans(marks))

    def days(self, value: float) -> str:
        return self(f"dashboard.days.{'one' if round(value, 1) <= 1 else 'other'}", n=self.number(value))

    def percent(self, share: float) -> str:
        return self("dashboard.percent", n=self.number(share * 100))

    def short_month(self, month: date) -> str:
        return self("dashboard.month", month=self(f"dashboard.month_short.{month.month}"), year=f"{month:%y}")

    def month(self, month: date) -> str:
        return self("dashboard.month", month=self(f"page.month.{month.month}"), year=month.year)


@dataclass(frozen=True)
class Measure:
    """One figure of a month: its label, its number, the published figure it comes from, how it reads."""

    key: str
    value: Callable[[PeriodFigures], float | None]
    figure: Callable[[PeriodFigures], Figure]
    unit: str = "count"  # count, days, percent
    colour: int = 0
    dashed: bool = False

    def text(self, t: Texts, f: PeriodFigures) -> Cell:
        if self.figure(f).suppressed:
            return Cell(t("dashboard.suppressed"), suppressed=True)
        value = self.value(f)
        if value is None:
            return Cell("–")
        return Cell({"days": t.number, "percent": t.percent}.get(self.unit, t.number)(value))


@dataclass(frozen=True)
class Cell:
    text: str
    suppressed: bool = False


@dataclass(frozen=True)
class ChartSpec:
    key: str
    kind: str  # line, bars, percent
    measures: tuple[Measure, ...]


@dataclass(frozen=True)
class SectionSpec:
    key: str
    charts: tuple[ChartSpec, ...]
    table: tuple[Measure, ...]


def _n(
    get: Callable[[PeriodFigures], Count | Share | Distribution],
) -> Callable[[PeriodFigures], float | None]:
    return lambda f: None if get(f).n is None else float(get(f).n or 0)


def _elapsed(f: PeriodFigures) -> Distribution:
    return f.time_to_decision.elapsed


def _legal(f: PeriodFigures) -> Distribution:
    return f.time_to_decision.legal


def _age(f: PeriodFigures) -> Distribution:
    return f.backlog.age


def _channel(name: str) -> Measure:
    return Measure(f"channel.{name}", _n(lambda f: f.channels[name]), lambda f: f.channels[name])


def _decided(kind: str) -> Measure:
    return Measure(f"decided.{kind}", _n(lambda f: f.decided[kind]), lambda f: f.decided[kind])


DECIDED = Measure("decided", _n(_elapsed), _elapsed)
SUBMITTED = Measure("submitted", _n(lambda f: f.submitted), lambda f: f.submitted, colour=1)
TIMES = (
    Measure("elapsed_p50", lambda f: _elapsed(f).p50_days, _elapsed, "days"),
    Measure("elapsed_p90", lambda f: _elapsed(f).p90_days, _elapsed, "days", dashed=True),
    Measure("legal_p50", lambda f: _legal(f).p50_days, _legal, "days", colour=1),
    Measure("legal_p90", lambda f: _legal(f).p90_days, _legal, "days", colour=1, dashed=True),
)
OPEN = Measure("open", _n(lambda f: f.backlog.open), lambda f: f.backlog.open)
AGES = (
    Measure("age_p50", lambda f: _age(f).p50_days, _age, "days"),
    Measure("age_p90", lambda f: _age(f).p90_days, _age, "days", dashed=True),
)
WITHIN = Measure(
    "within", lambda f: f.within_legal_deadline.share, lambda f: f.within_legal_deadline, "percent"
)
WITHIN_N = Measure("within_n", _n(lambda f: f.within_legal_deadline), lambda f: f.within_legal_deadline)
DIGITAL = Measure("digital", lambda f: f.digital_share.share, lambda f: f.digital_share, "percent")
SECTIONS = (
    SectionSpec("times", (ChartSpec("times", "line", TIMES),), (DECIDED, *TIMES)),
    SectionSpec(
        "volumes",
        (ChartSpec("volumes", "line", (SUBMITTED, DECIDED)),),
        (
            SUBMITTED,
            DECIDED,
            *(_decided(k) for k in ("accepted", "rejected", "tacit-acceptance", "tacit-rejection", "closed")),
        ),
    ),
    SectionSpec(
        "backlog", (ChartSpec("open", "bars", (OPEN,)), ChartSpec("age", "line", AGES)), (OPEN, *AGES)
    ),
    SectionSpec("deadline", (ChartSpec("deadline", "percent", (WITHIN,)),), (WITHIN_N, WITHIN)),
    SectionSpec(
        "digital",
        (ChartSpec("digital", "percent", (DIGITAL,)),),
        (SUBMITTED, *(_channel(c) for c in ("web", "counter", "phone", "mail")), DIGITAL),
    ),
)


@dataclass
class Chart:
    id: str
    title: str
    wide: Markup | None = None
    narrow: Markup | None = None
    withheld: list[str] = field(default_factory=list)


@dataclass
class Table:
    caption: str
    head: str
    columns: list[str]
    rows: list[tuple[str, list[Cell]]]


@dataclass
class Section:
    id: str
    heading: str
    method: str
    charts: list[Chart]
    table: Table


@dataclass
class Dashboard:
    """What the page shows for one procedure over a window of full months."""

    t: Texts
    procedure: Procedure
    months: list[date]
    monthly: list[PeriodFigures]
    window: PeriodFigures
    today: PeriodFigures

    @property
    def label(self) -> str:
        return self.t(
            "dashboard.window", first=self.t.month(self.months[0]), last=self.t.month(self.months[-1])
        )

    def sections(self) -> list[Section]:
        return [self._section(spec) for spec in SECTIONS] + [self._satisfaction()]

    def _section(self, spec: SectionSpec) -> Section:
        t = self.t
        rows = [
            (self._month(m), [c.text(t, f) for c in spec.table])
            for m, f in zip(self.months, self.monthly, strict=True)
        ]
        table = Table(
            t(f"dashboard.{spec.key}.heading"),
            t("dashboard.col.month"),
            [self._column(m) for m in spec.table],
            rows,
        )
        charts_ = [self._chart(c) for c in spec.charts]
        return Section(
            spec.key, t(f"dashboard.{spec.key}.heading"), t(f"dashboard.{spec.key}.method"), charts_, table
        )

    def _month(self, month: date) -> str:
        under_way = f" {self.t('dashboard.under_way')}" if month == self.months[-1] else ""
        return self.t.month(month) + under_way

    def _column(self, measure: Measure) -> str:
        unit = {"days": self.t("dashboard.unit.days"), "percent": ""}.get(measure.unit, "")
        name = self.t(f"dashboard.col.{measure.key}")
        return f"{name} ({unit})" if unit else name

    def _chart(self, spec: ChartSpec) -> Chart:
        t, title = self.t, self.t(f"dashboard.chart.{spec.key}")
        points = [
            charts.Point(t.short_month(m), t(f"dashboard.col.{measure.key}"), measure.value(f))
            for measure in spec.measures
            for m, f in zip(self.months, self.monthly, strict=True)
        ]
        withheld = [
            self._month(m)
            for m, f in zip(self.months, self.monthly, strict=True)
            if any(measure.figure(f).suppressed for measure in spec.measures)
        ]
        chart = Chart(f"chart-{spec.key}", title, withheld=withheld)
        if all(p.value is None for p in points):
            return chart
        series = [charts.Series(t(f"dashboard.col.{m.key}"), m.colour, m.dashed) for m in spec.measures]
        y_title = t(f"dashboard.unit.{spec.measures[0].unit}")

        def spec_of(size: str) -> dict[str, Any]:
            if spec.kind == "line":
                return charts.line(points, series, size=size, y_title=y_title)
            return charts.bars(points, size=size, y_title=y_title, percent=spec.kind == "percent")

        full = t(
            "dashboard.chart_title",
            chart=title,
            procedure=self.procedure.title.in_(t.lang),
            window=self.label,
        )
        chart.wide, chart.narrow = (
            charts.svg(spec_of(size), lang=t.lang, chart_id=f"{chart.id}-{size}", title=full)
            for size in ("wide", "narrow")
        )
        return chart

    def _satisfaction(self) -> Section:
        t, figure = self.t, self.window.satisfaction
        counts = figure.counts or {}
        chart = Chart("chart-satisfaction", t("dashboard.chart.satisfaction"))
        if figure.suppressed:
            chart.withheld = [self.label]
        elif figure.n:
            values = [(r, counts.get(r, 0)) for r in sorted(counts)]
            full = t(
                "dashboard.chart_title",
                chart=chart.title,
                procedure=self.procedure.title.in_(t.lang),
                window=self.label,
            )
            chart.wide, chart.narrow = (
                charts.svg(
                    charts.categories(
                        values,
                        size=size,
                        x_title=t("dashboard.axis.rating"),
                        y_title=t("dashboard.unit.ratings"),
                    ),
                    lang=t.lang,
                    chart_id=f"{chart.id}-{size}",
                    title=full,
                )
                for size in ("wide", "narrow")
            )
        suppressed = Cell(t("dashboard.suppressed"), suppressed=True)
        rows = [
            (
                t("dashboard.rating", n=r),
                [suppressed if figure.suppressed else Cell(t.number(counts.get(r, 0)))],
            )
            for r in ("1", "2", "3", "4", "5")
        ]
        table = Table(chart.title, t("dashboard.col.rating"), [t("dashboard.col.ratings")], rows)
        return Section(
            "satisfaction",
            t("dashboard.satisfaction.heading"),
            t("dashboard.satisfaction.method"),
            [chart],
            table,
        )

    def key_figures(self) -> list[tuple[str, Cell, list[str]]]:
        """(what, the figure, what it is over) for the whole window, and for today for the backlog."""
        t, w = self.t, self.window
        elapsed, legal = w.time_to_decision.elapsed, w.time_to_decision.legal
        satisfaction = w.satisfaction
        open_now = self.today.backlog.open
        return [
            (
                t("dashboard.key.median"),
                self._days(elapsed, elapsed.p50_days),
                [self._legal(legal, legal.p50_days), self._over("decided", elapsed.n)],
            ),
            (
                t("dashboard.key.p90"),
                self._days(elapsed, elapsed.p90_days),
                [self._legal(legal, legal.p90_days), self._over("decided", elapsed.n)],
            ),
            (
                t("dashboard.key.within"),
                self._of(w.within_legal_deadline, lambda: self._share(w.within_legal_deadline)),
                [self._over("deadline", w.within_legal_deadline.n)],
            ),
            (
                t("dashboard.key.digital"),
                self._of(w.digital_share, lambda: self._share(w.digital_share)),
                [self._over("submitted", w.digital_share.n)],
            ),
            (
                t("dashboard.key.satisfaction"),
                self._of(
                    satisfaction,
                    lambda: (
                        "–"
                        if satisfaction.mean is None
                        else t("dashboard.out_of_5", n=t.number(satisfaction.mean))
                    ),
                ),
                [self._over("ratings", satisfaction.n)],
            ),
            (
                t("dashboard.key.open"),
                self._of(open_now, lambda: t.number(open_now.n or 0)),
                [t("dashboard.key.open_detail")],
            ),
        ]

    def _of(self, figure: Figure, text: Callable[[], str]) -> Cell:
        if figure.suppressed:
            return Cell(self.t("dashboard.suppressed"), suppressed=True)
        return Cell(text())

    def _days(self, figure: Distribution, value: float | None) -> Cell:
        return self._of(figure, lambda: "–" if value is None else self.t.days(value))

    def _legal(self, figure: Distribution, value: float | None) -> str:
        return self.t("dashboard.key.legal", days=self._days(figure, value).text)

    def _share(self, share: Share) -> str:
        return "–" if share.share is None else self.t.percent(share.share)

    def _over(self, what: str, n: int | None) -> str:
        if n is None:
            return self.t("dashboard.over.suppressed")
        return self.t(f"dashboard.over.{what}.{'one' if n == 1 else 'other'}", n=self.t.number(n))


def _window(now: datetime, length: int) -> list[date]:
    """The last `length` months, the one under way included, as `GET /v1/stats/procedures` counts them."""
    this_month = domain.month_of(now)
    year, month = divmod(this_month.year * 12 + this_month.month - 1 - length, 12)
    return domain.months_between(date(year, month + 1, 1), this_month)[1:]


def _legal_deadline(t: Texts, procedure: Procedure) -> str:
    rule = procedure.legal_deadline
    if rule is None:
        return t("dashboard.deadline.none")
    parts = [
        t(f"dashboard.deadline.{unit}.{'one' if n == 1 else 'other'}", n=n)
        for unit, n in (("months", rule.months), ("days", rule.days))
        if n
    ]
    return t("dashboard.deadline.rule", deadline=t("dashboard.deadline.and").join(parts))


@router.get("/", response_class=HTMLResponse)
@router.get("/statistiques", response_class=HTMLResponse)
async def dashboard(
    request: Request,
    pool: Pool,
    catalogue: CatalogueDep,
    procedure: Annotated[str | None, Query(max_length=60)] = None,
    months: Annotated[str | None, Query(max_length=3)] = None,
) -> HTMLResponse:
    lang = language_of(request)
    settings: StatsSettings = request.app.state.settings
    codes = catalogue.codes()
    code = procedure if procedure in codes else codes[0]
    chosen = catalogue.latest(code)
    assert chosen is not None
    length = int(months) if months in {str(w) for w in WINDOWS} else WINDOWS[0]
    now = datetime.now(UTC)
    window = _window(now, length)
    this_month = domain.month_of(now)
    monthly = periods(window, "month")
    whole = Period(f"{window[0]:%Y-%m}/{window[-1]:%Y-%m}", window)
    today = periods([this_month], "month")[0]
    data = await queries.aggregates(
        pool, procedure=code, district="", periods=[*monthly, whole, today], now=now
    )
    figures = Figures(data, threshold=settings.suppression_threshold)
    t = Texts(lang)
    page = Dashboard(
        t=t,
        procedure=chosen,
        months=window,
        monthly=[figures.period(p) for p in monthly],
        window=figures.period(whole),
        today=figures.period(today),
    )
    # vl-convert renders in this thread pool, away from the event loop.
    sections = await run_in_threadpool(page.sections)

    def href(*, lang: str = lang, code: str = code, length: int = length) -> str:
        return "/statistiques?" + urlencode({"procedure": code, "months": length, "lang": lang})

    status = 200 if procedure in (None, code) else 404
    html = templates.get_template("dashboard.html").render(
        lang=lang,
        t=t,
        title=t(
            "page.title",
            page=f"{chosen.title.in_(lang)} – {t('dashboard.heading')}",
            site=t("page.site_name"),
        ),
        static=STATIC,
        alternates=[
            {"lang": other, "name": translate("page.language_name", other), "href": href(lang=other)}
            for other in languages()
            if other != lang
        ],
        procedures=[(c, p.title.in_(lang), href(code=c)) for c in codes if (p := catalogue.latest(c))],
        windows=[(w, t("dashboard.last_months", n=w), href(length=w)) for w in WINDOWS],
        code=code,
        length=length,
        unknown=procedure if status == 404 else None,
        procedure=chosen,
        deadline=_legal_deadline(t, chosen),
        page=page,
        sections=sections,
        method=method(lang, settings.suppression_threshold),
        licence=LICENCES[settings.open_data_licence]["title"],
    )
    return HTMLResponse(html, status_code=status, headers={**HEADERS, "Content-Language": lang})
