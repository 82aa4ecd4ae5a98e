"""Procedures are data: versioned definition files in `procedures/<code>/v<version>.yaml`.

A definition gives the form fields, the steps with citizen-facing labels in every language, the
transitions and who may take them, the legal deadline and what silence means. They are validated at
start-up: a bad file stops the service with a message naming the file and the field.
A case keeps the version it was submitted under; the newest version is the one offered to citizens.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from shared.i18n import DEFAULT_LANGUAGE, languages
from shared.places import Districts, PlacesError

CODE_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
# Deadlines and dates shown to people count in the city's calendar days, not UTC's.
CITY_TIMEZONE = ZoneInfo("Europe/Paris")


class Text(BaseModel):
    """A text in every supported language: `{fr: ..., en: ...}`."""

    model_config = ConfigDict(frozen=True, extra="allow")

    @model_validator(mode="after")
    def _every_language(self) -> Self:
        present = self.model_extra or {}
        if unknown := sorted(set(present) - set(languages())):
            raise ValueError(
                f"text has unknown language key(s) {', '.join(unknown)} (a comma in an unquoted YAML "
                f"text splits it: quote the text); languages are {', '.join(languages())}"
            )
        missing = [
            lang for lang in languages() if not isinstance(present.get(lang), str) or not present[lang]
        ]
        if missing:
            raise ValueError(f"text is missing the language(s) {', '.join(missing)}")
        return self

    def in_(self, lang: str) -> str:
        texts = self.model_extra or {}
        return str(texts.get(lang) or texts[DEFAULT_LANGUAGE])


class FieldType(StrEnum):
    STRING = "string"
    TEXT = "text"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    CHOICE = "choice"
    EMAIL = "email"
    PHONE = "phone"
    URL = "url"
    LOCATION = "location"
    # Files the citizen attaches (plans, a photo): kept in intake's object store, named in the form's data
    # by their document ids, never published.
    FILE = "file"


# What may be published of a field's value (on the bus and in the statistics): facts that identify nobody.
# Free text, e-mail, phone, links to documents, files and exact places stay in intake; a location may be
# published coarsened to its district (`public: district`), and nothing finer.
PUBLISHABLE = frozenset({FieldType.CHOICE, FieldType.INTEGER, FieldType.NUMBER, FieldType.BOOLEAN})
DISTRICT: Literal["district"] = "district"

# The types a file field may `accept`: those intake can tell from the content (and, for images, re-encode
# without their metadata), with the extension a stored file is given.
FILE_TYPES = {"application/pdf": ".pdf", "image/jpeg": ".jpg", "image/png": ".png"}
# One file is read into memory to be checked: a bound per file, whatever a definition says.
MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_FILES = 20


def type_names(types: tuple[str, ...]) -> str:
    """File types for people: `PDF, JPEG, PNG`."""
    return ", ".join(t.split("/")[-1].upper() for t in types)


class Choice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    value: str = Field(pattern=CODE_PATTERN)
    label: Text
    # The service a case goes to when this value is chosen (a street report's category: lighting to
    # `eclairage`, night-time noise to `police-municipale`); the procedure's `service` otherwise.
    service: str | None = Field(default=None, pattern=CODE_PATTERN)
    # A report of this kind could point at a person (harassment, night-time noise at an address): its
    # grid cell is not published, only its district, and it is not listed in public (Open311 GETs).
    sensitive: bool = False


class FormField(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: FieldType
    label: Text
    help: Text | None = None
    required: bool = True
    # Published on the bus and in the statistics (see `PUBLISHABLE`): `true` for a fact that identifies
    # nobody (a category, a count), `district` for a location, of which only the district is published.
    # Everything else stays in intake.
    public: bool | Literal["district"] = False
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=1)
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    pattern_hint: Text | None = None
    # The values of a choice field; for a location field, the districts a place can be in (the citizen,
    # or the map, names one beside the address or the point).
    choices: tuple[Choice, ...] = ()
    not_in_future: bool = False
    # A file field: the types it takes (see `FILE_TYPES`), the size of each file, how many files.
    accept: tuple[str, ...] = ()
    max_bytes: int | None = Field(default=None, ge=1, le=MAX_FILE_BYTES)
    max_files: int | None = Field(default=None, ge=1, le=MAX_FILES)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.type is FieldType.CHOICE and not self.choices:
            raise ValueError(f"field {self.name}: a choice field needs `choices`")
        if self.choices and self.type not in (FieldType.CHOICE, FieldType.LOCATION):
            raise ValueError(f"field {self.name}: `choices` only goes with type choice (or location)")
        self._check_public()
        self._check_file()
        if self.pattern and not self.pattern_hint:
            raise ValueError(f"field {self.name}: a `pattern` needs a `pattern_hint` people can read")
        if self.pattern:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(
                    f"field {self.name}: `pattern` is not a valid regular expression: {exc}"
                ) from exc
        if self.type in (FieldType.STRING, FieldType.TEXT) and self.max_length is None:
            raise ValueError(f"field {self.name}: text fields need a `max_length`")
        return self

    def _check_public(self) -> None:
        if self.public is True and self.type not in PUBLISHABLE:
            hint = (
                "publish only its district: `public: district` with the districts as `choices`"
                if self.type is FieldType.LOCATION
                else f"only {', '.join(sorted(PUBLISHABLE))} fields may be public"
            )
            raise ValueError(
                f"field {self.name}: a {self.type} field cannot be public, it could identify someone ({hint})"
            )
        if self.public == DISTRICT:
            if self.type is not FieldType.LOCATION:
                raise ValueError(f"field {self.name}: `public: district` only goes with type location")
            if not self.choices:
                raise ValueError(f"field {self.name}: `public: district` needs the districts, as `choices`")

    def _check_file(self) -> None:
        if self.type is not FieldType.FILE:
            if self.accept or self.max_bytes is not None or self.max_files is not None:
                raise ValueError(
                    f"field {self.name}: `accept`, `max_bytes` and `max_files` only go with type file"
                )
            return
        if not self.accept or self.max_bytes is None:
            raise ValueError(f"field {self.name}: a file field needs `accept` (its types) and `max_bytes`")
        if unknown := sorted(set(self.accept) - set(FILE_TYPES)):
            raise ValueError(
                f"field {self.name}: intake cannot check files of type {', '.join(unknown)}; "
                f"`accept` takes {', '.join(FILE_TYPES)}"
            )

    @property
    def files_at_most(self) -> int:
        """How many files a file field takes (one unless `max_files` says more)."""
        return self.max_files or 1

    @property
    def publishes_district(self) -> bool:
        return self.type is FieldType.LOCATION and self.public == DISTRICT


class Turn(StrEnum):
    ADMINISTRATION = "administration"
    CITIZEN = "citizen"
    NONE = "none"


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CLOSED = "closed"


class Step(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str = Field(pattern=CODE_PATTERN)
    label: Text
    explanation: Text
    turn: Turn = Turn.ADMINISTRATION
    expected_days: int | None = Field(default=None, ge=0)
    # Set on final steps: what the case ended with.
    outcome: Outcome | None = None
    # A street report's "done" ("service fait"): this many days after it, the reporter is asked whether
    # the problem is really fixed; "not fixed" takes the citizen's transition out of this step (reopens).
    ask_if_fixed_after_days: int | None = Field(default=None, ge=1)


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    # A transition the citizen takes by answering a request (`POST /v1/track/{code}/replies` on intake).
    CITIZEN = "citizen"


class Transition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    action: str = Field(pattern=CODE_PATTERN)
    from_: str = Field(alias="from")
    to: str
    roles: tuple[Role, ...] = (Role.AGENT, Role.SUPERVISOR)


class Silence(StrEnum):
    ACCEPTANCE = "acceptance"  # silence vaut accord
    REJECTION = "rejection"  # silence vaut rejet
    NOTHING = "nothing"


class LegalDeadline(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    months: int = Field(default=0, ge=0)
    days: int = Field(default=0, ge=0)
    silence: Silence = Silence.NOTHING
    # The final step a case moves to when the deadline passes and silence means acceptance or rejection.
    tacit_step: str | None = None
    clock_stops_when_waiting_for_citizen: bool = True

    def due(self, start: date) -> date:
        """The deadline for a case started on `start`, counted in calendar months then days."""
        month_index = start.month - 1 + self.months
        year, month = start.year + month_index // 12, month_index % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        return date(year, month, day) + timedelta(days=self.days)


class Retention(BaseModel):
    """How long the applicant's personal data is kept once the case is decided; then intake erases it
    (`services/intake/erasure.py`), and the case's history and statistics remain."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    months: int = Field(ge=1, le=1200)


class Procedure(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str = Field(pattern=CODE_PATTERN, max_length=60)
    version: int = Field(ge=1)
    service: str = Field(pattern=CODE_PATTERN)
    title: Text
    summary: Text
    legal_basis: str | None = None
    legal_deadline: LegalDeadline | None = None
    # None: the personal data is kept until an admin erases it on request.
    retention: Retention | None = None
    fields: tuple[FormField, ...]
    steps: tuple[Step, ...] = Field(min_length=2)
    transitions: tuple[Transition, ...]
    _districts: Districts | None = PrivateAttr(default=None)

    @field_validator("fields")
    @classmethod
    def _unique_fields(cls, fields: tuple[FormField, ...]) -> tuple[FormField, ...]:
        names = [f.name for f in fields]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"field names appear twice: {', '.join(dupes)}")
        return fields

    @model_validator(mode="after")
    def _coherent_steps(self) -> Self:
        codes = [s.code for s in self.steps]
        if dupes := sorted({c for c in codes if codes.count(c) > 1}):
            raise ValueError(f"step codes appear twice: {', '.join(dupes)}")
        for t in self.transitions:
            for end in (t.from_, t.to):
                if end not in codes:
                    raise ValueError(f"transition {t.action} names unknown step {end!r}")
        if self.steps[0].outcome is not None:
            raise ValueError("the first step cannot be a final one")
        if not any(s.outcome for s in self.steps):
            raise ValueError("at least one step must be final (have an `outcome`)")
        for t in self.transitions:
            self._check_leaves_final(t)
        self._check_routing()
        self._check_tacit_step()
        return self

    def _check_leaves_final(self, t: Transition) -> None:
        """Only the reporter saying "not fixed" may leave a final step (a done report, reopened)."""
        step = self.steps_by_code[t.from_]
        if step.ask_if_fixed_after_days is not None:
            if step.outcome is None:
                raise ValueError(f"step {step.code}: `ask_if_fixed_after_days` only goes on a final step")
            reopen = [x for x in self.transitions if x.from_ == step.code]
            if len(reopen) != 1 or reopen[0].roles != (Role.CITIZEN,):
                raise ValueError(
                    f"step {step.code} asks if it is fixed: it needs exactly one transition out of it, "
                    'with `roles: [citizen]` (what "not fixed" does)'
                )
        elif step.outcome is not None:
            raise ValueError(f"transition {t.action} leaves the final step {t.from_}")

    def _check_routing(self) -> None:
        routed = [f.name for f in self.fields if any(c.service for c in f.choices)]
        if len(routed) > 1:
            raise ValueError(f"only one field may route cases to services; {', '.join(routed)} do")

    def service_for(self, data: Mapping[str, Any]) -> str:
        """The service a case with this form data goes to: its routing choice's, else the procedure's."""
        for f in self.fields:
            for choice in f.choices:
                if choice.service and data.get(f.name) == choice.value:
                    return choice.service
        return self.service

    def sensitive(self, data: Mapping[str, Any]) -> bool:
        """Whether a case with this form data is of a kind whose place is published only as its district."""
        return any(c.sensitive and data.get(f.name) == c.value for f in self.fields for c in f.choices)

    @property
    def services(self) -> list[str]:
        """Every service this procedure's cases can go to."""
        routed = {c.service for f in self.fields for c in f.choices if c.service}
        return sorted(routed | {self.service})

    @property
    def districts(self) -> Districts | None:
        """The district polygons shipped beside the definition (`districts.geojson`), if any."""
        return self._districts

    @property
    def fact_names(self) -> list[str]:
        """The names of the public facts a case of this procedure carries on the bus: its public fields';
        for a place found in the district polygons, `district` and `cell` (its H3 cell) instead."""
        names: list[str] = []
        for f in self.fields:
            if f.publishes_district and self._districts is not None:
                names += ["district", "cell"]
            elif f.public:
                names.append(f.name)
        return names

    @property
    def located(self) -> FormField | None:
        """The location field whose district is public (a street report's place), if any."""
        return next((f for f in self.fields if f.publishes_district), None)

    def _check_tacit_step(self) -> None:
        deadline = self.legal_deadline
        if deadline is None or deadline.silence is Silence.NOTHING:
            if deadline is not None and deadline.tacit_step:
                raise ValueError("legal_deadline.tacit_step only goes with silence acceptance or rejection")
            return
        expected = Outcome.ACCEPTED if deadline.silence is Silence.ACCEPTANCE else Outcome.REJECTED
        step = self.steps_by_code.get(deadline.tacit_step or "")
        if step is None or step.outcome is not expected:
            raise ValueError(
                f"legal_deadline.tacit_step must name a final step with outcome {expected} "
                f"(silence means {deadline.silence})"
            )

    @property
    def first_step(self) -> Step:
        return self.steps[0]

    @cached_property
    def steps_by_code(self) -> dict[str, Step]:
        return {s.code: s for s in self.steps}

    def step(self, code: str) -> Step:
        return self.steps_by_code[code]

    def field(self, name: str) -> FormField | None:
        return next((f for f in self.fields if f.name == name), None)


class CatalogueError(ValueError):
    """A definition file is wrong; the message names the file and the field."""


@dataclass(frozen=True)
class Catalogue:
    """Every version of every procedure, loaded from a folder and validated."""

    versions: dict[str, dict[int, Procedure]]

    def codes(self) -> list[str]:
        return sorted(self.versions)

    def latest(self, code: str) -> Procedure | None:
        versions = self.versions.get(code)
        return versions[max(versions)] if versions else None

    def get(self, code: str, version: int) -> Procedure | None:
        return self.versions.get(code, {}).get(version)

    def all_latest(self) -> list[Procedure]:
        return [p for code in self.codes() if (p := self.latest(code)) is not None]


def _load_file(path: Path) -> Procedure:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise CatalogueError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"
        ) from exc
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{path}: not valid YAML: {exc}") from exc
    try:
        procedure = Procedure.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
        )
        raise CatalogueError(f"{path}: {problems}") from exc
    expected = (path.parent.name, path.stem)
    if expected != (procedure.code, f"v{procedure.version}"):
        raise CatalogueError(
            f"{path}: code/version say {procedure.code} v{procedure.version}, "
            f"the file should then be {procedure.code}/v{procedure.version}.yaml"
        )
    _attach_districts(procedure, path.parent / "districts.geojson")
    return procedure


def _attach_districts(procedure: Procedure, path: Path) -> None:
    """A procedure whose place publishes its district finds it from the point when its folder ships the
    district polygons; their codes are then exactly the field's districts (`choices`)."""
    located = procedure.located
    if located is None or not path.is_file():
        return
    try:
        districts = Districts.load(path)
    except PlacesError as exc:
        raise CatalogueError(f"{path}: {exc}") from exc
    if taken := {"district", "cell"} & {f.name for f in procedure.fields}:
        raise CatalogueError(
            f"{path}: with the districts' polygons, a place's facts `district` and `cell` come from the "
            f"place; rename the field(s) {', '.join(sorted(taken))} of {procedure.code} v{procedure.version}"
        )
    expected, shipped = {c.value for c in located.choices}, set(districts.codes)
    if expected != shipped:
        raise CatalogueError(
            f"{path}: the polygons' `code`s ({', '.join(sorted(shipped))}) must be the districts of field "
            f"{located.name} in {procedure.code} v{procedure.version} ({', '.join(sorted(expected))})"
        )
    procedure._districts = districts


def load_catalogue(directory: Path) -> Catalogue:
    if not directory.is_dir():
        raise CatalogueError(f"{directory}: the procedures folder does not exist (set PROCEDURES_DIR)")
    versions: dict[str, dict[int, Procedure]] = {}
    for path in sorted(directory.glob("*/v*.yaml")):
        procedure = _load_file(path)
        versions.setdefault(procedure.code, {})[procedure.version] = procedure
    if not versions:
        raise CatalogueError(f"{directory}: no procedure definitions (<code>/v<n>.yaml) found")
    return Catalogue(versions=versions)
