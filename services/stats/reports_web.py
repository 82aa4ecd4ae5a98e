"""The street reports' public page: `GET /statistiques/signalements`, a map of the districts coloured by
the figure the visitor chooses (a plain GET form, no script), the same numbers in a table beside it, every
figure in tables below, and the method. Its figures are the JSON API's (`reports_api.series`).

A parameter that names nothing (a figure, a category, a period, a procedure) is said so on the page, in
the visitor's language, with a 400 (404 for a procedure), and the page shows its defaults instead.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.stats import domain, reports_api
from services.stats.opendata import LICENCES
from services.stats.reports import is_reports
from services.stats.reports_api import Ask, Reporting
from services.stats.reports_page import FIGURES, ReportsPage
from services.stats.settings import StatsSettings
from services.stats.web import HEADERS, STATIC, WINDOWS, Texts, templates
from shared.deps import CatalogueDep, Pool
from shared.http import ApiError, language_of
from shared.pages import language_links
from shared.procedures import Catalogue

router = APIRouter(include_in_schema=False)
PATH = "/statistiques/signalements"
DEFAULT_FIGURE = "time_to_done"


def window(now: datetime, length: int) -> tuple[date, date]:
    """The last `length` months, the one under way included."""
    last = domain.month_of(now)
    year, month = divmod(last.year * 12 + last.month - length, 12)
    return date(year, month + 1, 1), last


def _said(value: str | None) -> str:
    """What the visitor asked for, as the page quotes it back (shortened)."""
    text = value or ""
    return text if len(text) <= 40 else text[:40] + "…"


def _choose(value: str | None, known: list[str], default: str) -> tuple[str, bool]:
    """(the value, or the default if it names nothing; whether it named nothing)."""
    if value in (None, ""):
        return default, False
    return (value, False) if value in known else (default, True)


@router.get(PATH, response_class=HTMLResponse)
async def reports_page(
    request: Request,
    pool: Pool,
    catalogue: CatalogueDep,
    procedure: str | None = None,
    figure: str | None = None,
    category: str | None = None,
    months: str | None = None,
) -> HTMLResponse:
    lang, t = language_of(request), Texts(language_of(request))
    settings: StatsSettings = request.app.state.settings
    codes = [p.code for p in catalogue.all_latest() if is_reports(p)]
    if not codes:
        raise ApiError("stats.reports.none", status=404)
    code, bad_procedure = _choose(procedure, codes, codes[0])
    reporting = Reporting.of(catalogue, code)
    categories = reporting.categories(lang)
    figure_key, bad_figure = _choose(figure, list(FIGURES), DEFAULT_FIGURE)
    category_code, bad_category = _choose(category, list(categories), "")
    length, bad_months = _choose(months, [str(w) for w in WINDOWS], str(WINDOWS[0]))
    problems = [
        message
        for bad, message in (
            (
                bad_procedure,
                t("reports.page.unknown_procedure", value=_said(procedure), available=", ".join(codes)),
            ),
            (bad_figure, t("reports.page.unknown_figure", value=_said(figure))),
            (bad_category, t("reports.page.unknown_category", value=_said(category))),
            (bad_months, t("reports.page.unknown_period", value=_said(months))),
        )
        if bad
    ]
    now = datetime.now(UTC)
    first, last = window(now, int(length))
    ask = Ask(first, last, category_code or None)
    series = await reports_api.series(
        pool, reporting, ask, lang=lang, threshold=settings.suppression_threshold, now=now
    )
    period = t("dashboard.window", first=t.month(first), last=t.month(last))
    polygons = reporting.latest.districts
    assert polygons is not None  # a reports procedure ships its districts (checked at start-up)
    page = ReportsPage(
        t=t,
        series=series,
        figure=FIGURES[figure_key],
        polygons=polygons,
        period=period,
        category=categories.get(category_code) or t("reports.all_categories"),
        latest_steps=[s.code for s in reporting.latest.steps if s.outcome],
    )
    chosen = {"procedure": code, "figure": figure_key, "category": category_code, "months": length}

    def href(other: str) -> str:
        return f"{PATH}?" + urlencode({**chosen, "lang": other})

    query = urlencode(
        {"from": f"{first:%Y-%m}", "to": f"{last:%Y-%m}", "category": category_code, "lang": lang}
    )
    status = 404 if bad_procedure else 400 if problems else 200
    html = templates.get_template("reports.html").render(
        lang=lang,
        t=t,
        title=t("page.title", page=t("reports.heading"), site=t("page.site_name")),
        static=STATIC,
        alternates=language_links(lang, href),
        problems=problems,
        procedures=_procedures(catalogue, codes, lang, chosen) if len(codes) > 1 else [],
        code=code,
        chosen=chosen,
        figures=[(k, t(f"reports.figure.{k}")) for k in FIGURES],
        categories=list(categories.items()),
        windows=[(str(w), t("dashboard.last_months", n=w)) for w in WINDOWS],
        page=page,
        series=series,
        period=period,
        api=f"{reports_api.router.prefix}/{code}",
        query=query,
        licence=LICENCES[settings.open_data_licence]["title"],
    )
    return HTMLResponse(html, status_code=status, headers={**HEADERS, "Content-Language": lang})


def _procedures(
    catalogue: Catalogue, codes: list[str], lang: str, chosen: dict[str, str]
) -> list[tuple[str, str, str]]:
    found = []
    for c in codes:
        procedure = catalogue.latest(c)
        if procedure is not None:
            query = urlencode({"procedure": c, "figure": chosen["figure"], "lang": lang})
            found.append((c, procedure.title.in_(lang), f"{PATH}?{query}"))
    return found
