"""What a citizen's message says: one template file per kind and language (`templates/<lang>/<kind>.txt`,
blocks `subject`, `body` and `sms`), rendered to an e-mail (plain text and HTML) and an SMS.

Messages carry no more personal data than needed: no name, no form field; the tracking code (the citizen's
own key to the case) and the case's procedure, step and dates.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template
from markupsafe import Markup, escape

from services.notify.domain import Kind
from shared.i18n import direction
from shared.pages import Texts
from shared.procedures import Procedure
from shared.tracking_code import display, normalize

TEMPLATES = Path(__file__).parent / "templates"
DEFAULT_LANGUAGE = "fr"
SMS_MAX = 160
# A text GSM-7 cannot spell (Arabic) goes as UCS-2: 70 characters in one part, 67 a part once concatenated.
# One part could not hold even the tracking link, so such an SMS may take two parts: 134 characters.
UCS2_MAX = 2 * 67
# The GSM 03.38 basic character set: an SMS in it takes 160 characters; one character outside it (say ê)
# turns the whole message into UCS-2, 70 characters a part.
GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_FOR = {
    "’": "'",
    "«": '"',
    "»": '"',
    "œ": "oe",
    "Œ": "OE",
    "–": "-",
    "—": "-",
    "…": "...",
    "\u00a0": " ",
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    sms: str


@cache
def _environment(autoescape: bool) -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=autoescape,  # noqa: S701 - False only for the plain text parts (e-mail text, SMS)
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def languages() -> tuple[str, ...]:
    return tuple(sorted(p.name for p in TEMPLATES.iterdir() if p.is_dir()))


def language_for(lang: str) -> str:
    """The citizen's language if its templates exist, else French."""
    return lang if lang in languages() else DEFAULT_LANGUAGE


def _block(template: Template, name: str, values: dict[str, Any]) -> str:
    context = template.new_context(values)
    return "".join(template.blocks[name](context)).strip()


def _in_gsm7(char: str) -> str | None:
    """The character in GSM-7 (itself, a plain equivalent, or without its accent), or None."""
    if char in GSM7:
        return char
    char = _GSM7_FOR.get(char, char)
    if all(c in GSM7 for c in char):
        return char
    plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
    return plain if plain and all(c in GSM7 for c in plain) else None


def gsm7(text: str) -> str:
    """The text in the GSM-7 alphabet: accents it lacks dropped (ê → e), typographic marks made plain."""
    return "".join(_in_gsm7(char) or "?" for char in text)


def spells_in_gsm7(text: str) -> bool:
    """Whether GSM-7 can write every letter of the text (French, English: yes, once accents are dropped;
    Arabic: no). A symbol it lacks may become "?"; a letter may not, or the message is lost."""
    return all(_in_gsm7(char) is not None for char in text if unicodedata.category(char).startswith("L"))


def sms_text(text: str) -> tuple[str, int]:
    """The SMS to send and the most characters it may have: GSM-7 in one part when its letters allow it,
    else the text as written, in UCS-2 (two parts at most)."""
    text = re.sub(r"\s+", " ", text).strip()
    if spells_in_gsm7(text):
        return gsm7(text), SMS_MAX
    return text, UCS2_MAX


def _sms(text: str) -> str:
    text, limit = sms_text(text)
    if len(text) <= limit:
        return text
    # The link comes last and must stay whole: shorten what comes before it.
    head, sep, link = text.rpartition(" ")
    ellipsis = "..." if limit == SMS_MAX else "…"
    room = limit - len(link) - len(sep) - len(ellipsis)
    if room <= 20:
        return text[:limit]
    kept = head[:room]
    if head[room] != " " and " " in kept:  # no half word
        kept = kept.rsplit(" ", 1)[0]
    return f"{kept.rstrip(' .,;:،؛')}{ellipsis}{sep}{link}"


def render(
    *,
    kind: Kind,
    lang: str,
    procedure: Procedure,
    context: dict[str, Any],
    tracking_code: str,
    tracking_url: str,
    unsubscribe_url: str,
) -> Rendered:
    lang = language_for(lang)
    t = Texts(lang)
    step = procedure.steps_by_code.get(context.get("step") or "")
    code = display(normalize(tracking_code))
    values: dict[str, str | None] = {
        "procedure": procedure.title.in_(lang),
        "step_label": step.label.in_(lang) if step else str(context.get("step", "")),
        "step_explanation": step.explanation.in_(lang) if step else "",
        "tracking_code": code,
        "tracking_url": tracking_url,
        "legal_deadline": _day(t, context.get("legal_deadline")),
        "submitted_on": _day(t, context.get("at")),
        "decided_on": _day(t, context.get("at")),
    }
    name = f"{lang}/{kind.value}.txt"
    plain = _environment(False).get_template(name)
    subject = _block(plain, "subject", values)
    body = _block(plain, "body", values)
    footer = t("notify.footer")
    colon = " : " if lang == "fr" else ": "
    text = f"{body}\n\n-- \n{footer}\n{t('notify.unsubscribe')}{colon}{unsubscribe_url}\n"
    html = (
        _environment(True)
        .get_template("layout.html")
        .render(
            lang=lang,
            direction=direction(lang),
            subject=subject,
            paragraphs=[_linked(p, code=code) for p in re.split(r"\n\s*\n", body) if p.strip()],
            footer=footer,
            unsubscribe_url=unsubscribe_url,
            unsubscribe_label=t("notify.unsubscribe"),
        )
    )
    return Rendered(subject=subject, text=text, html=html, sms=_sms(_block(plain, "sms", values)))


def _day(t: Texts, value: str | None) -> str | None:
    if not value:
        return None
    moment: date = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    return t.day(moment)


_CODE_STYLE = "font-size:1.375em;font-family:monospace;letter-spacing:0.05em;white-space:nowrap;"


def _linked(paragraph: str, *, code: str) -> Markup:
    """A paragraph of the plain text as HTML: escaped, its line breaks kept, its links clickable and the
    tracking code large, in one piece; both read left to right, even in an Arabic message."""
    parts = re.split(r"(https?://\S+)", paragraph.strip())
    html = Markup("")
    for index, part in enumerate(parts):
        if index % 2:
            html += Markup('<a href="{0}" dir="ltr" style="color:#000091;">{0}</a>').format(part)
            continue
        text = escape(part).replace("\n", Markup("<br>\n"))
        html += text.replace(
            code, Markup('<strong dir="ltr" style="{}">{}</strong>').format(_CODE_STYLE, code)
        )
    return html
