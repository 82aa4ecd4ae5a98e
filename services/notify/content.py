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
from shared.pages import Texts
from shared.procedures import Procedure
from shared.tracking_code import display, normalize

TEMPLATES = Path(__file__).parent / "templates"
DEFAULT_LANGUAGE = "fr"
SMS_MAX = 160
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


def gsm7(text: str) -> str:
    """The text in the GSM-7 alphabet: accents it lacks dropped (ê → e), typographic marks made plain."""
    out = []
    for char in text:
        if char in GSM7:
            out.append(char)
            continue
        char = _GSM7_FOR.get(char, char)
        if all(c in GSM7 for c in char):
            out.append(char)
            continue
        plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
        out.append(plain if plain and all(c in GSM7 for c in plain) else "?")
    return "".join(out)


def _sms(text: str) -> str:
    text = re.sub(r"\s+", " ", gsm7(text)).strip()
    if len(text) <= SMS_MAX:
        return text
    # The link comes last and must stay whole: shorten what comes before it.
    head, sep, link = text.rpartition(" ")
    room = SMS_MAX - len(link) - 4
    return f"{head[:room].rstrip()}...{sep}{link}" if room > 20 else text[:SMS_MAX]


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
    tracking code large, in one piece."""
    parts = re.split(r"(https?://\S+)", paragraph.strip())
    html = Markup("")
    for index, part in enumerate(parts):
        if index % 2:
            html += Markup('<a href="{0}" style="color:#000091;">{0}</a>').format(part)
            continue
        text = escape(part).replace("\n", Markup("<br>\n"))
        html += text.replace(code, Markup('<strong style="{}">{}</strong>').format(_CODE_STYLE, code))
    return html
