"""What every service's web pages share: their templates' environment and the words of a page in the
visitor's language (`t` in the templates)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from shared.i18n import translate
from shared.procedures import CITY_TIMEZONE


def page_templates(directory: Path) -> Environment:
    """Autoescaped, and strict: a template naming a value it was not given fails, it never shows blank."""
    return Environment(
        loader=FileSystemLoader(directory),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


class Texts:
    """The page's words in one language; templates call it `t`."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def __call__(self, key: str, /, **params: object) -> str:
        return translate(key, self.lang, **params)

    def plural(self, key: str, n: int) -> str:
        """`key.one` or `key.other`; whether 0 is singular is the language's call (`page.plural.zero`)."""
        one = n == 1 or (n == 0 and self("page.plural.zero") == "one")
        return self(f"{key}.{'one' if one else 'other'}", n=n)

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


def city_day(value: date | datetime) -> date:
    if not isinstance(value, datetime):
        return value
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(CITY_TIMEZONE).date()
