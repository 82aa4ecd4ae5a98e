"""Street reports' figures as JSON: `GET /v1/stats/reports/{procedure}`, per category × district × month,
each figure with its n and whether it is suppressed. The page, the CSV and the GeoJSON read the same
`series` (`reports_web.py`, `reports_opendata.py`), so that they never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Query, Request

from services.stats import domain, reports_queries
from services.stats.api import From, Month, month_of_text
from services.stats.reports import CATEGORY, is_reports
from services.stats.reports_figures import Facts, Publish, Tally, open_ages, tallies
from services.stats.reports_schemas import FinalStep, Place, ReportMethod, ReportRow, ReportSeries
from services.stats.settings import StatsSettings
from shared.deps import CatalogueDep, Pool, procedure_or_404
from shared.http import ApiError, Lang
from shared.i18n import translate
from shared.procedures import Catalogue, FormField, Procedure

router = APIRouter(prefix="/v1/stats/reports", tags=["street reports"])
Code = Annotated[str | None, Query(max_length=60)]


@dataclass(frozen=True)
class Reporting:
    """A reports procedure as its figures name things: every version, the newest first."""

    versions: list[Procedure]

    @classmethod
    def of(cls, catalogue: Catalogue, code: str) -> Reporting:
        """The procedure, or a 404 naming the reports procedures there are."""
        latest = procedure_or_404(catalogue, code)
        if not is_reports(latest):
            available = ", ".join(p.code for p in catalogue.all_latest() if is_reports(p))
            raise ApiError("stats.reports.not_reports", status=404, code=code, available=available)
        versions = catalogue.versions[code]
        return cls([versions[v] for v in sorted(versions, reverse=True)])

    @property
    def latest(self) -> Procedure:
        return self.versions[0]

    def final_steps(self, lang: str) -> list[FinalStep]:
        """Every final step of every version (the newest's first), by code."""
        found: dict[str, FinalStep] = {}
        for version in self.versions:
            for step in version.steps:
                if step.outcome and step.code not in found:
                    found[step.code] = FinalStep(
                        code=step.code, outcome=step.outcome.value, label=step.label.in_(lang)
                    )
        return list(found.values())

    def categories(self, lang: str) -> dict[str, str]:
        """Each category's label, by code (every version's, the newest's first)."""
        return self._choices((v.field(CATEGORY) for v in self.versions), lang)

    def districts(self, lang: str) -> dict[str, str]:
        """Each district's name, by code: the polygons' names, else the place field's choices."""
        polygons = self.latest.districts
        if polygons is not None:
            return {d.code: d.name(lang) for d in polygons}
        return self._choices([self.latest.located], lang)

    @staticmethod
    def _choices(fields: Iterable[FormField | None], lang: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for f in fields:
            for choice in f.choices if f else ():
                found.setdefault(choice.value, choice.label.in_(lang))
        return found

    @property
    def commitment_days(self) -> int | None:
        rule = self.latest.legal_deadline
        return rule.days if rule and not rule.months else None


def method(lang: str, threshold: int, reporting: Reporting) -> ReportMethod:
    def text(key: str, **params: object) -> str:
        return translate(f"reports.method.{key}", lang, **params)

    days = reporting.commitment_days
    return ReportMethod(
        reports=text("reports"),
        done=text("done"),
        confirmed=text("confirmed"),
        commitment=text("commitment", days=days) if days else text("no_commitment"),
        reopened=text("reopened"),
        months=text("months"),
        percentiles=text("percentiles"),
        open_now=text("open_now"),
        small_areas=text("small_areas", threshold=threshold),
        suppression_threshold=threshold,
        suppression=text("suppression", threshold=threshold),
    )


def check_choice(value: str | None, known: dict[str, str], key: str) -> str | None:
    """A category or district asked for: one there is, or a 422 naming them."""
    if value is not None and value not in known:
        raise ApiError(key, status=422, value=value, available=", ".join(known))
    return value


@dataclass(frozen=True)
class Ask:
    """What a reader asks for: months, and a category and a district (None: all)."""

    first: date
    last: date
    category: str | None = None
    district: str | None = None


async def period(
    pool: asyncpg.Pool, code: str, from_: str | None, to: str | None, now: datetime
) -> tuple[date, date]:
    """The months asked for: by default from the first report to the month under way."""
    last = month_of_text(to) if to else domain.month_of(now)
    first = month_of_text(from_) if from_ else (await reports_queries.first_month(pool, code) or last)
    if first > last:
        raise ApiError(
            "stats.bad_range", status=422, from_=from_ or f"{first:%Y-%m}", to=to or f"{last:%Y-%m}"
        )
    return first, last


def build(facts: Facts, reporting: Reporting, ask: Ask, *, lang: str, threshold: int) -> ReportSeries:
    """The published figures of what was read."""
    steps = reporting.final_steps(lang)
    publish = Publish(threshold=threshold, steps=[s.code for s in steps])
    districts, categories = reporting.districts(lang), reporting.categories(lang)
    by_district, open_by_district = (
        tallies(facts, lambda k: k.district),
        open_ages(facts, lambda o: o.district),
    )
    by_category, open_by_category = (
        tallies(facts, lambda k: k.category),
        open_ages(facts, lambda o: o.category),
    )
    unnamed = translate("reports.unnamed", lang)

    def places(names: dict[str, str], figures: dict[str, Tally], ages: dict[str, list[float]]) -> list[Place]:
        """Every place the procedure names, then any other the reports name (an older version's)."""
        codes = [*names, *sorted({*figures, *ages} - set(names))]
        return [
            Place(
                code=c,
                name=names.get(c) or c or unnamed,
                figures=publish.figures(figures.get(c)),
                open_now=publish.open(ages.get(c)),
            )
            for c in codes
        ]

    rows = tallies(facts, lambda k: k)
    return ReportSeries(
        procedure=reporting.latest.code,
        title=reporting.latest.title.in_(lang),
        from_=f"{ask.first:%Y-%m}",
        to=f"{ask.last:%Y-%m}",
        category=ask.category,
        district=ask.district,
        commitment_days=reporting.commitment_days,
        final_steps=steps,
        method=method(lang, threshold, reporting),
        total=publish.figures(tallies(facts, lambda k: None).get(None)),
        open_now=publish.open(open_ages(facts, lambda o: None).get(None)),
        districts=places(districts, by_district, open_by_district),
        categories=places(categories, by_category, open_by_category),
        rows=[
            ReportRow(
                month=f"{k.month:%Y-%m}",
                category=k.category,
                district=k.district,
                figures=publish.figures(rows[k]),
            )
            for k in facts.cells()
        ],
    )


async def series(
    pool: asyncpg.Pool, reporting: Reporting, ask: Ask, *, lang: str, threshold: int, now: datetime
) -> ReportSeries:
    facts = await reports_queries.facts(
        pool,
        procedure=reporting.latest.code,
        first=ask.first,
        last=ask.last,
        category=ask.category,
        district=ask.district,
        now=now,
    )
    return build(facts, reporting, ask, lang=lang, threshold=threshold)


async def asked(
    pool: asyncpg.Pool,
    catalogue: Catalogue,
    code: str,
    *,
    from_: str | None,
    to: str | None,
    category: str | None,
    district: str | None,
    lang: str,
    now: datetime,
) -> tuple[Reporting, Ask]:
    """The procedure and what is asked of it, checked: a 404 or a 422 that says what to ask instead."""
    reporting = Reporting.of(catalogue, code)
    check_choice(category, reporting.categories(lang), "stats.reports.unknown_category")
    check_choice(district, reporting.districts(lang), "stats.reports.unknown_district")
    first, last = await period(pool, code, from_, to, now)
    return reporting, Ask(first, last, category, district)


@router.get("/{procedure}", response_model=ReportSeries, response_model_by_alias=True)
async def report_series(
    procedure: str,
    request: Request,
    pool: Pool,
    catalogue: CatalogueDep,
    lang: Lang,
    from_: From = None,
    to: Month = None,
    category: Code = None,
    district: Code = None,
) -> ReportSeries:
    """A reports procedure's figures over the months asked (by default, from its first report to now):
    in total, per district, per category and per category × district × month."""
    settings: StatsSettings = request.app.state.settings
    now = datetime.now(UTC)
    reporting, ask = await asked(
        pool,
        catalogue,
        procedure,
        from_=from_,
        to=to,
        category=category,
        district=district,
        lang=lang,
        now=now,
    )
    return await series(pool, reporting, ask, lang=lang, threshold=settings.suppression_threshold, now=now)
