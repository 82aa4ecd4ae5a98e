"""What intake's forms are made of, without HTTP: the fields a procedure's form shows (drawn from its
definition, with what was typed and what is wrong), the applicant's questions, the request the typed form
makes for `api.submit`, and the words of the catalogue (deadlines, what to prepare, the search).

`pages.py` serves them."""

from __future__ import annotations

import math
import re
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from services.intake import domain
from services.intake.schemas import ApplicantCreate
from shared.http import validation_errors
from shared.i18n import languages, translate
from shared.pages import Texts
from shared.procedures import FieldType, FormField, LegalDeadline, Procedure, Silence

# The fields whose answer is a document to prepare beforehand (and later any file field).
DOCUMENT_TYPES = frozenset(t for t in FieldType if t.value in ("url", "file"))
KEY_FIELD = "idempotency_key"
# A file type as people name it (`application/pdf` is "PDF").
FILE_TYPE_WORDS = {"application/pdf": "PDF", "image/jpeg": "JPEG", "image/png": "PNG"}
# How the citizen wants to hear of their case, as the form's radio buttons say it (`notify_by`).
NOTIFY_BY = {"email": ["email"], "sms": ["sms"], "both": ["email", "sms"], "none": []}
CHANNELS = ("web", "counter", "phone")
# Typed into a form: each input's name and value (`data.surname`, `applicant.email`...).
Typed = Mapping[str, str]


# --- What a page shows --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    lang: str | None = None  # a language named in its own language


@dataclass
class FieldView:
    """One question of a form, as its macro draws it: `kind` names the macro (a field type)."""

    name: str  # the input's name: `data.surname`, `applicant.email`
    kind: str
    label: str
    required: bool = False
    hints: list[str] = field(default_factory=list)
    choices: list[Choice] = field(default_factory=list)
    value: str = ""  # what was typed
    parts: dict[str, str] = field(default_factory=dict)  # a location's address, latitude, longitude...
    max_length: int | None = None
    autocomplete: str | None = None
    accept: str = ""  # a file field's types
    max_files: int = 1
    error: str | None = None
    # Files chosen, but not kept: the form came back, and a file input cannot be filled again by a page.
    choose_again: str | None = None

    @property
    def id(self) -> str:
        """The element the error summary links to: the input, or a group's first one."""
        return self.name.replace(".", "-").replace("_", "-")

    @property
    def described_by(self) -> str:
        """The ids of its hint and its error, for `aria-describedby`."""
        ids = [f"{self.id}-hint"] * bool(self.hints) + [f"{self.id}-error"] * bool(self.error)
        return " ".join(ids + [f"{self.id}-again"] * bool(self.choose_again))

    @property
    def short(self) -> bool:
        return self.kind in ("integer", "number", "date") or (self.max_length or 99) <= 20


@dataclass(frozen=True)
class SummaryItem:
    text: str
    target: str | None  # the id of the field it is about


def _constraints(f: FormField, t: Texts) -> list[str]:
    """The rules of a field said beforehand, so that nobody has to learn them from an error."""
    hints = [t("intake.form.hint.pattern", hint=f.pattern_hint.in_(t.lang))] if f.pattern_hint else []
    if f.min_length and f.max_length:
        hints.append(t("intake.form.hint.length_range", min=f.min_length, max=f.max_length))
    elif f.max_length and f.type is FieldType.TEXT:
        hints.append(t("intake.form.hint.length_max", max=f.max_length))
    low, high = (f"{v:g}" if v is not None else None for v in (f.minimum, f.maximum))
    if low and high:
        hints.append(t("intake.form.hint.range", min=low, max=high))
    elif low or high:
        hints.append(t("intake.form.hint.min" if low else "intake.form.hint.max", min=low, max=high))
    if f.type is FieldType.URL:
        hints.append(t("intake.form.hint.url"))
    if f.type is FieldType.LOCATION:
        hints.append(t("intake.form.location.hint"))
    if f.type is FieldType.FILE and f.max_bytes:
        many = f.files_at_most > 1
        types = ", ".join(FILE_TYPE_WORDS.get(a, a) for a in f.accept)
        size = f"{f.max_bytes / 1_000_000:.1f}".removesuffix(".0")
        hints.append(
            t(
                "intake.form.hint.files" if many else "intake.form.hint.file",
                types=types,
                size=size,
                count=f.files_at_most,
            )
        )
    return hints


def procedure_field(f: FormField, t: Texts, typed: Typed, *, districts_known: bool = False) -> FieldView:
    """`districts_known`: the procedure ships its district polygons, so a place's district is found from
    the point and the form does not ask for it."""
    view = FieldView(
        name=f"data.{f.name}",
        kind=f.type.value,
        label=f.label.in_(t.lang),
        required=f.required,
        hints=([f.help.in_(t.lang)] if f.help else []) + _constraints(f, t),
        choices=[]
        if f.type is FieldType.LOCATION and districts_known
        else [Choice(c.value, c.label.in_(t.lang)) for c in f.choices],
        max_length=f.max_length,
        accept=",".join(f.accept),
        max_files=f.files_at_most,
    )
    if f.type is FieldType.LOCATION:
        view.parts = {part: typed.get(f"{view.name}.{part}", "") for part in LOCATION_PARTS}
    else:
        view.value = typed.get(view.name, "")
    return view


LOCATION_PARTS = ("address", "latitude", "longitude", "district")


def applicant_fields(t: Texts, typed: Typed, *, counter_form: bool) -> list[FieldView]:
    """Who applies, and how they want to be told: `ApplicantCreate`, as questions."""

    def ask(name: str, kind: str, *, hint: bool = False, default: str = "", **more: Any) -> FieldView:
        key = name.removeprefix("applicant.").replace("_", "-")
        return FieldView(
            name=name,
            kind=kind,
            label=t(f"intake.form.{key}"),
            hints=[t(f"intake.form.{key}.hint")] if hint else [],
            value=typed.get(name, "") or default,
            **more,
        )

    fields = [
        ask("applicant.name", "string", required=True, max_length=200, autocomplete="name"),
        ask("applicant.email", "email", hint=True, max_length=254, autocomplete="email"),
        ask("applicant.phone", "phone", hint=True, max_length=40, autocomplete="tel"),
        ask(
            "applicant.notify_by",
            "choice",
            hint=True,
            choices=[Choice(v, t(f"intake.form.notify-by.{v}")) for v in NOTIFY_BY],
        ),
        ask(
            "applicant.language",
            "choice",
            required=True,
            default=t.lang,
            choices=[Choice(lang, translate("page.language_name", lang), lang) for lang in languages()],
        ),
    ]
    if counter_form:
        channels = [Choice(c, t(f"intake.form.channel.{c}")) for c in CHANNELS]
        fields.append(ask("channel", "choice", hint=True, required=True, default="web", choices=channels))
    return fields


def with_errors(fields: list[FieldView], errors: list[domain.FieldError], t: Texts) -> list[SummaryItem]:
    """Puts each error next to its field, and lists them all in the fields' order for the summary."""
    by_name = {f.name: f for f in fields}
    unplaced: list[SummaryItem] = []
    for error in errors:
        # `applicant`: neither an e-mail address nor a phone number; said at the e-mail field.
        name = "applicant.email" if error["field"] == "applicant" else error["field"]
        target = by_name.get(name)
        if target is None:
            unplaced.append(SummaryItem(error["message"], None))
        elif target.error is None:
            target.error = error["message"]
        else:
            target.error += " " + error["message"]
    placed = [
        SummaryItem(t("intake.form.error_item", label=f.label, message=f.error), f.id)
        for f in fields
        if f.error
    ]
    return placed + unplaced


# --- What was typed, as a submission ------------------------------------------------------------------


def _number(text: str) -> int | float | str:
    """A number as people type it (`1 500,5`); anything else as typed, for the domain to say why."""
    compact = re.sub(r"[\s\u00a0\u202f]", "", text).replace(",", ".")
    try:
        value = float(compact)
    except ValueError:
        return text
    if not math.isfinite(value):
        return text
    return int(compact) if re.fullmatch(r"[+-]?\d+", compact) else value


def _answer(f: FormField, typed: Typed) -> Any:
    name = f"data.{f.name}"
    if f.type is FieldType.LOCATION:
        place: dict[str, Any] = {}
        for part in LOCATION_PARTS:
            text = typed.get(f"{name}.{part}", "").strip()
            if text:
                place[part] = _number(text) if part in ("latitude", "longitude") else text
        return place or None
    text = typed.get(name, "")
    if not text.strip():
        return None
    if f.type in (FieldType.INTEGER, FieldType.NUMBER):
        return _number(text.strip())
    if f.type is FieldType.BOOLEAN:
        return {"true": True, "false": False}.get(text, text)
    return text


def case_request(procedure: Procedure, typed: Typed, *, lang: str, counter_form: bool) -> dict[str, Any]:
    """The JSON a client of `POST /v1/cases` would send for this form."""
    data = {f.name: value for f in procedure.fields if (value := _answer(f, typed)) is not None}
    applicant: dict[str, Any] = {
        "name": typed.get("applicant.name", ""),
        "email": typed.get("applicant.email", "").strip() or None,
        "phone": typed.get("applicant.phone", "").strip() or None,
        "language": typed.get("applicant.language") or lang,
        "notify_by": NOTIFY_BY.get(typed.get("applicant.notify_by", "")),
    }
    channel = typed.get("channel", "web") if counter_form else "web"
    return {
        "procedure": procedure.code,
        "data": data,
        "applicant": applicant,
        "channel": channel if channel in CHANNELS else "web",
    }


def request_errors(
    procedure: Procedure,
    payload: dict[str, Any],
    exc: ValidationError,
    lang: str,
    *,
    documents: Mapping[str, Sequence[str]] | None = None,
    file_errors: Sequence[domain.FieldError] = (),
) -> list[domain.FieldError]:
    """Every problem of a form the request model refuses (a blank name, a too long phone...): the
    model's, and the domain's where it says it better, so that the citizen sees them all at once; the
    files' (`file_errors`) too, and a file field whose files passed (`documents`) is not missing."""
    found = {e["field"]: e for e in validation_errors(RequestValidationError(exc.errors()), lang)}
    _, data_errors = domain.check_data(procedure, payload["data"], lang, documents=documents)
    refused = {e["field"] for e in file_errors}
    data_errors = [e for e in data_errors if e["field"] not in refused]
    applicant = ApplicantCreate.model_construct(**payload["applicant"])
    _, applicant_errors = domain.check_applicant(applicant, lang)
    found.update({e["field"]: e for e in data_errors + applicant_errors})
    return [e for name, e in found.items() if name not in refused] + list(file_errors)


async def typed_form(request: Request) -> dict[str, str]:
    """What the form posted, urlencoded or multipart; an unreadable form is an empty one."""
    typed, _ = await posted_form(request)
    return typed


async def posted_form(request: Request) -> tuple[dict[str, str], dict[str, list[UploadFile]]]:
    """What the form posted: what was typed, and the files chosen, by the name of their field
    (`data.plans` is `plans`, as `documents.receive_fields` takes them). Unreadable: an empty form."""
    try:
        form = await request.form()
    except HTTPException:
        return {}, {}
    typed: dict[str, str] = {}
    files: dict[str, list[UploadFile]] = {}
    for name, value in form.multi_items():
        if isinstance(value, str):
            typed[name] = value
        else:
            files.setdefault(name.removeprefix("data."), []).append(value)
    return typed, files


def choose_again(fields: list[FieldView], sent: Iterable[str], t: Texts) -> None:
    """Says, at each file field whose files were sent, that they must be chosen again: a form sent back
    keeps what was typed, never the files (a page cannot fill a file input)."""
    names = {f"data.{name}" for name in sent}
    for f in fields:
        if f.kind == FieldType.FILE.value and f.name in names:
            f.choose_again = t("intake.form.file_again")


def form_key(typed: Typed) -> str:
    """The idempotency key the form was drawn with; a form posted without one still records one case."""
    try:
        return str(uuid.UUID(typed.get(KEY_FIELD, "")))
    except ValueError:
        return str(uuid.uuid4())


# --- The words of a procedure -------------------------------------------------------------------------


def deadline_words(rule: LegalDeadline | None, t: Texts) -> list[str]:
    """How long the city hall has to answer, and what its silence means, in plain words."""
    if rule is None:
        return [t("intake.deadline.none")]
    words = [t("intake.deadline.within", duration=t.duration(months=rule.months, days=rule.days))]
    if rule.silence is not Silence.NOTHING:
        words.append(t(f"intake.deadline.silence.{rule.silence.value}"))
    if rule.clock_stops_when_waiting_for_citizen:
        words.append(t("intake.deadline.paused"))
    return words


def documents(procedure: Procedure, t: Texts) -> list[str]:
    """What to prepare: the documents the form asks for."""
    return [
        f.label.in_(t.lang) + ("" if f.required else " " + t("intake.optional"))
        for f in procedure.fields
        if f.type in DOCUMENT_TYPES
    ]


def folded(text: str) -> str:
    """Lower case, without accents: "Démarche" and "demarche" are the same word to a search."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


def matches(procedure: Procedure, query: str, lang: str) -> bool:
    """Every word of the query is in the procedure's title, summary or questions."""
    haystack = folded(
        " ".join(
            [procedure.title.in_(lang), procedure.summary.in_(lang)]
            + [f.label.in_(lang) for f in procedure.fields]
        )
    )
    return all(word in haystack for word in folded(query).split())


# --- Routes -------------------------------------------------------------------------------------------
