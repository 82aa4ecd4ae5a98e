"""stats' JSON API: waiting times and volumes per procedure and month, published for anyone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from services.stats import domain, queries
from services.stats.report import Figures, Period, periods
from services.stats.schemas import Method, ProcedureList, ProcedureSeries, ProcedureSummary
from services.stats.settings import StatsSettings
from shared.deps import CatalogueDep, Pool, procedure_or_404
from shared.http import ApiError, Lang
from shared.i18n import translate
from shared.procedures import Procedure

router = APIRouter(prefix="/v1/stats")
MONTH = r"^(19|2\d)\d{2}-(0[1-9]|1[0-2])$"  # 1900-01 to 2999-12
Month = Annotated[str | None, Query(pattern=MONTH, description="YYYY-MM", examples=["2026-03"])]
From = Annotated[str | None, Query(alias="from", pattern=MONTH, description="first month, YYYY-MM")]


def method(lang: str, threshold: int) -> Method:
    def text(key: str, **params: object) -> str:
        return translate(f"stats.method.{key}", lang, **params)

    return Method(
        clocks={"elapsed": text("elapsed"), "legal": text("legal")},
        percentiles=text("percentiles"),
        months=text("months"),
        backlog=text("backlog"),
        suppression_threshold=threshold,
        suppression=text("suppression", threshold=threshold),
    )


def month_of_text(text: str) -> date:
    """The first day of a month given as YYYY-MM (checked by `MONTH`)."""
    return date(int(text[:4]), int(text[5:7]), 1)


def _deadline(procedure: Procedure) -> dict[str, int] | None:
    rule = procedure.legal_deadline
    return {"months": rule.months, "days": rule.days} if rule else None


@router.get("/procedures", response_model=ProcedureList)
async def list_procedures(request: Request, pool: Pool, catalogue: CatalogueDep, lang: Lang) -> ProcedureList:
    """Every procedure with its figures of the last 12 months and of the month under way."""
    settings: StatsSettings = request.app.state.settings
    now = datetime.now(UTC)
    this_month = domain.month_of(now)
    months = domain.months_between(date(this_month.year - 1, this_month.month, 1), this_month)[1:]
    last_12 = Period(
        f"{domain.period_of(months[0], 'month')}/{domain.period_of(months[-1], 'month')}", months
    )
    latest = periods([this_month], "month")[0]
    codes = catalogue.codes()
    found = await queries.aggregates_of(
        pool, procedures=codes, district="", periods=[last_12, latest], now=now
    )
    summaries = []
    for code in codes:
        procedure = procedure_or_404(catalogue, code)
        figures = Figures(found[code], threshold=settings.suppression_threshold)
        summaries.append(
            ProcedureSummary(
                procedure=code,
                title=procedure.title.in_(lang),
                legal_deadline=_deadline(procedure),
                last_12_months=figures.period(last_12),
                latest_month=figures.period(latest),
            )
        )
    return ProcedureList(method=method(lang, settings.suppression_threshold), procedures=summaries)


@router.get("/procedures/{code}", response_model=ProcedureSeries)
async def procedure_series(
    code: str,
    request: Request,
    pool: Pool,
    catalogue: CatalogueDep,
    lang: Lang,
    from_: From = None,
    to: Month = None,
    district: Annotated[str | None, Query(max_length=60)] = None,
    period: Annotated[str, Query(pattern="^(month|quarter|year)$")] = "month",
) -> ProcedureSeries:
    """The series of one procedure, month by month (or by quarter or year), each figure with its n."""
    settings: StatsSettings = request.app.state.settings
    procedure = procedure_or_404(catalogue, code)
    now = datetime.now(UTC)
    last = month_of_text(to) if to else domain.month_of(now)
    first = month_of_text(from_) if from_ else (await queries.first_month(pool, code) or last)
    if first > last:
        raise ApiError("stats.bad_range", status=422, from_=from_ or first, to=to or last)
    months = domain.months_between(first, last)[-240:]
    shown = periods(months, period)
    data = await queries.aggregates(pool, procedure=code, district=district or "", periods=shown, now=now)
    figures = Figures(data, threshold=settings.suppression_threshold)
    return ProcedureSeries(
        procedure=code,
        title=procedure.title.in_(lang),
        district=district,
        period=period,
        legal_deadline=_deadline(procedure),
        method=method(lang, settings.suppression_threshold),
        series=[figures.period(p) for p in shown],
    )
