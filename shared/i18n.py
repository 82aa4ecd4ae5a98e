"""Messages for people, in their language. A language is a JSON catalogue in `shared/locales/`.

Adding a language is adding `shared/locales/<lang>.json` (and the labels in the procedure files).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Literal

LOCALES_DIR = Path(__file__).parent / "locales"
DEFAULT_LANGUAGE = "fr"


@cache
def catalogues() -> dict[str, dict[str, str]]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(LOCALES_DIR.glob("*.json"))}


def languages() -> tuple[str, ...]:
    return tuple(catalogues())


def translate(key: str, lang: str, /, **params: object) -> str:
    """The message `key` in `lang` (falling back to French), with `{params}` filled in."""
    cats = catalogues()
    template = cats.get(lang, {}).get(key) or cats[DEFAULT_LANGUAGE].get(key) or key
    return template.format(**params)


def negotiate(*, query_lang: str | None, accept_language: str | None) -> str:
    """`?lang=` wins, then the best `Accept-Language` entry we speak, then French."""
    known = languages()
    if query_lang and query_lang.lower()[:2] in known:
        return query_lang.lower()[:2]
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower()[:2]
        if primary in known and quality > 0:
            ranked.append((-quality, position, primary))
    return sorted(ranked)[0][2] if ranked else DEFAULT_LANGUAGE


# Languages written right to left; a page in one of them sets `<html dir="rtl">`.
RIGHT_TO_LEFT = frozenset({"ar", "he", "fa", "ur"})


def direction(lang: str) -> Literal["ltr", "rtl"]:
    """`rtl` for a language written right to left, else `ltr` (the value of HTML's `dir`)."""
    return "rtl" if lang.lower()[:2] in RIGHT_TO_LEFT else "ltr"
