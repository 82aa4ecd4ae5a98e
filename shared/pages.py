"""What every service's web pages share: one look (the templates of `shared/templates/`, among them
`base.html`, and the stylesheet of `shared/static/`, served at `STATIC_PATH`), the security headers of a
page, and the words of a page in the visitor's language (`t` in the templates).

A service's own templates come first: `page_templates(HERE / "templates")` finds the service's
`result.html` there and the shared `base.html` it extends here. `base.html` sets `<html lang>`, and
`dir="rtl"` for a language written right to left (`shared.i18n.direction`); the stylesheet's sides are
logical (`margin-inline-start`...), so such a page reads right."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import asyncpg
from babel import Locale, UnknownLocaleError
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from shared.i18n import catalogues, direction, languages, translate
from shared.procedures import CITY_TIMEZONE

HERE = Path(__file__).parent
SHARED_TEMPLATES = HERE / "templates"
# The shared stylesheet's path on every service that has pages (the ingress sends it to one of them).
STATIC_PATH = "/static-suivi"

# No inline script or style anywhere, forms post to the page's own service, no referrer leaves (a page's
# URL may hold a tracking code).
HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "Vary": "Accept-Language",
}
# What shared/http answers with a JSON 503 (a backing service is down): a page says so in HTML instead.
UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    OSError,
    TimeoutError,
)
# For a page that shows a tracking code, or what someone typed: never kept by a browser or a proxy.
NO_STORE = {"Cache-Control": "no-store"}


def page_templates(directory: Path) -> Environment:
    """The service's templates, then the shared ones. Autoescaped, and strict: a template naming a value
    it was not given fails, it never shows blank."""
    environment = Environment(
        loader=ChoiceLoader([FileSystemLoader(directory), FileSystemLoader(SHARED_TEMPLATES)]),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals.update(direction=direction, suivi_static=STATIC_PATH)
    return environment


def mount_static(app: FastAPI) -> None:
    """Serve the shared stylesheet (and whatever else `shared/static/` holds) at `STATIC_PATH`."""
    app.mount(STATIC_PATH, StaticFiles(directory=HERE / "static"), name="suivi-static")


def language_links(lang: str, href: Callable[[str], str]) -> list[dict[str, str]]:
    """This page in the other languages, each named in its own language (the header's language links)."""
    return [
        {"lang": other, "name": translate("page.language_name", other), "href": href(other)}
        for other in languages()
        if other != lang
    ]


def render_page(
    templates: Environment,
    template: str,
    lang: str,
    *,
    title: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page in `lang`, titled "`title` – site name", with the shared headers (then `headers`)."""
    t = Texts(lang)
    html = templates.get_template(template).render(
        lang=lang, t=t, title=t("page.title", page=title, site=t("page.site_name")), **context
    )
    return HTMLResponse(
        html, status_code=status, headers={**HEADERS, **(headers or {}), "Content-Language": lang}
    )


class Texts:
    """The page's words in one language; templates call it `t`."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def __call__(self, key: str, /, **params: object) -> str:
        return translate(key, self.lang, **params)

    def plural(self, key: str, n: int, **params: object) -> str:
        """`key.<form>` for the language's plural form of `n` (CLDR: zero, one, two, few, many, other;
        French says "0 jour", Arabic has a dual), or `key.other` where the language's file has no text
        for that form."""
        form = _plural_form(self.lang, n)
        texts = catalogues().get(self.lang, {})
        if f"{key}.{form}" not in texts and form != "one":
            form = "other"
        return self(f"{key}.{form}", n=n, **params)

    def duration(self, *, months: int = 0, days: int = 0) -> str:
        """A period in words, like "2 mois" or "1 month and 15 days"."""
        parts = [
            self.plural(f"page.duration.{unit}", n) for unit, n in (("months", months), ("days", days)) if n
        ]
        return self("page.duration.and").join(parts) or self.plural("page.duration.days", 0)

    def day(self, value: date | datetime) -> str:
        """A date in words, like "21 novembre 2026" (the city's day, for a moment in time)."""
        day = city_day(value)
        return self(
            "page.date",
            day=self("page.date.day_1") if day.day == 1 else day.day,
            month=self(f"page.month.{day.month}"),
            year=day.year,
        )

    def time(self, value: date | datetime) -> Markup:
        """A `<time>` element reading like "21 novembre 2026"."""
        return Markup('<time datetime="{}">{}</time>').format(city_day(value).isoformat(), self.day(value))


@cache
def _locale(lang: str) -> Locale | None:
    try:
        return Locale.parse(lang)
    except (ValueError, UnknownLocaleError):
        return None


def _plural_form(lang: str, n: int) -> str:
    locale = _locale(lang)
    return locale.plural_form(n) if locale is not None else ("one" if n == 1 else "other")


def city_day(value: date | datetime) -> date:
    if not isinstance(value, datetime):
        return value
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(CITY_TIMEZONE).date()
