"""The public dashboard shows the JSON API's figures, in French and English, with charts, tables and method."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser

import httpx
from nats.js import JetStreamContext

from services.stats.web import Texts
from tests.conftest import Env
from tests.stats.test_figures import (
    DAY,
    PROCEDURE,
    Case,
    at,
    js,
    march_history,
    months_figures,
    publish,
    settled,
)

__all__ = ["js"]


class Tables(HTMLParser):
    """Every table of a page, as {caption: {row header: [cells]}}."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict[str, list[str]]] = {}
        self._caption: str | None = None
        self._row: list[str] | None = None
        self._text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("caption", "th", "td"):
            self._text = []
        elif tag == "tr":
            self._row = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption" and self._text is not None:
            self._caption = "".join(self._text).strip()
            self.tables[self._caption] = {}
        elif tag in ("th", "td") and self._row is not None and self._text is not None:
            self._row.append(" ".join("".join(self._text).split()))
        elif tag == "tr" and self._row and self._caption is not None:
            self.tables[self._caption][self._row[0]] = self._row[1:]
            self._row = None
        if tag in ("caption", "th", "td"):
            self._text = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def tables_of(html: str) -> dict[str, dict[str, list[str]]]:
    parser = Tables()
    parser.feed(html)
    return parser.tables


def table(html: str, starting: str) -> dict[str, list[str]]:
    found = [rows for caption, rows in tables_of(html).items() if caption.startswith(starting)]
    assert len(found) == 1, list(tables_of(html))
    return found[0]


async def history(js: JetStreamContext, env: Env) -> None:
    events, _, _ = march_history()
    await settled(env, (await publish(js, events))[-1])


async def test_the_dashboard_shows_the_json_figures_in_french_and_english(
    stats: httpx.AsyncClient, js: JetStreamContext, env: Env
) -> None:
    await history(js, env)
    body = (
        await stats.get(f"/v1/stats/procedures/{PROCEDURE}", params={"from": "2026-03", "to": "2026-04"})
    ).json()
    march = months_figures(body)["2026-03"]["time_to_decision"]
    summary = next(
        p
        for p in (await stats.get("/v1/stats/procedures")).json()["procedures"]
        if p["procedure"] == PROCEDURE
    )["last_12_months"]

    for lang, month, heading in (
        ("fr", "mars 2026", "Délai de décision"),
        ("en", "March 2026", "Time to decision"),
    ):
        page = await stats.get("/statistiques", params={"procedure": PROCEDURE, "months": "24", "lang": lang})
        assert page.status_code == 200 and page.headers["content-language"] == lang
        t = Texts(lang)
        times = table(page.text, heading)
        assert times[month] == [
            t.number(march["elapsed"]["n"]),
            t.number(march["elapsed"]["p50_days"]),
            t.number(march["elapsed"]["p90_days"]),
            t.number(march["legal"]["p50_days"]),
            t.number(march["legal"]["p90_days"]),
        ]
        assert len(times) == 1 + 24  # the header row and 24 months
        key_median = t.days(summary["time_to_decision"]["elapsed"]["p50_days"])
        assert key_median in page.text

    french = (
        await stats.get("/", params={"procedure": PROCEDURE}, headers={"Accept-Language": "fr-FR"})
    ).text
    assert '<html lang="fr">' in french and "Délai médian de décision" in french
    # March's median (17.88 days) as a French reader writes it, and a long one.
    assert Texts("fr").number(march["elapsed"]["p50_days"]) == "17,9" and ">17,9<" in french
    assert Texts("fr").days(1234.5) == "1\u202f234,5 jours" and Texts("en").days(1) == "1 day"
    english = (await stats.get("/", params={"procedure": PROCEDURE}, headers={"Accept-Language": "en"})).text
    assert '<html lang="en">' in english and "Median time to decision" in english


async def test_every_chart_is_an_inline_svg_named_by_its_title_with_its_table_and_method(
    stats: httpx.AsyncClient, js: JetStreamContext, env: Env
) -> None:
    await history(js, env)
    page = (await stats.get("/statistiques", params={"procedure": PROCEDURE, "lang": "fr"})).text

    svgs = re.findall(r"<svg [^>]*>\s*<title id=\"([^\"]+)\">([^<]+)</title>", page)
    # Six charts (no rating yet: no satisfaction chart), each drawn for a wide and a narrow screen.
    assert len(svgs) == 2 * 6
    for title_id, title in svgs:
        assert f'aria-labelledby="{title_id}"' in page and "Permis de construire" in title
    assert len(re.findall(r"<details", page)) == 6 and len(re.findall(r'class="method"', page)) == 6
    assert len(set(re.findall(r'\sid="([^"]+)"', page))) == len(re.findall(r'\sid="([^"]+)"', page))
    assert "<script" not in page


async def test_suppressed_figures_are_said_to_be_so(
    stats: httpx.AsyncClient, js: JetStreamContext, env: Env
) -> None:
    await history(js, env)
    # Two permits submitted in May, still open: too few to publish May's count.
    may = [e for i in range(2) for e in Case(at("2026-05-04T10:00") + i * DAY).events()]
    await settled(env, (await publish(js, may))[-1])
    page = (await stats.get("/statistiques", params={"procedure": PROCEDURE, "lang": "en"})).text
    assert "Not published (fewer than 5 cases): May 2026." in page
    # 5 rejections in March... but only 3 decided in March among the rejected: suppressed there.
    decisions = table(page, "Cases submitted and decided")
    march = decisions["March 2026"]
    json_march = months_figures(
        (
            await stats.get(f"/v1/stats/procedures/{PROCEDURE}", params={"from": "2026-03", "to": "2026-03"})
        ).json()
    )["2026-03"]
    rejected = json_march["decided"]["rejected"]
    assert rejected["suppressed"] is True and march[3] == "withheld"
    # No rating at all: nothing to draw, and it says so.
    assert "No figure to show for this period." in page


async def test_an_empty_procedure_and_an_unknown_one(stats: httpx.AsyncClient) -> None:
    empty = await stats.get("/statistiques", params={"procedure": "acte-naissance", "lang": "en"})
    assert empty.status_code == 200 and "This procedure has no legal deadline." in empty.text
    assert "chart-times-wide-title" not in empty.text and "No figure to show for this period." in empty.text
    unknown = await stats.get("/statistiques", params={"procedure": "permis-de-voler", "lang": "en"})
    assert unknown.status_code == 404 and "There is no procedure &#34;permis-de-voler&#34;" in unknown.text
    css = await stats.get("/static-stats/stats.css")
    assert css.status_code == 200 and "--brand" in css.text


async def test_the_period_is_the_last_12_or_24_months(stats: httpx.AsyncClient) -> None:
    now = datetime.now(UTC)
    t = Texts("en")
    for months, rows in (("12", 12), ("24", 24), ("7", 12)):
        page = (await stats.get("/statistiques", params={"months": months, "lang": "en"})).text
        times = table(page, "Time to decision")
        assert len(times) == 1 + rows
        assert list(times)[-1] == f"{t('page.month.' + str(now.month))} {now.year} (so far)"
