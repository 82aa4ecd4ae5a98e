"""Open311 GeoReport v2: which of our procedures are Open311 services, and under which `service_code`.

A procedure whose place publishes its district (`Procedure.located`: a street report) is served through
Open311, one service per value of its category (the choice field that routes cases to a service, else its
first public choice field): `eclairage`, `nid-de-poule`... A value two procedures share is namespaced with
the procedure's code (`signalement-voirie.eclairage`: a dot, which no code or value may hold). A located
procedure without a category is one service, named by its code.

intake lists these services and takes reports for them; tracking names each report's service the same way.
Both read the same catalogue, so both compute the same codes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.procedures import Catalogue, FieldType, FormField, Procedure, Text

SEPARATOR = "."


@dataclass(frozen=True)
class Open311Service:
    """One Open311 service: a category value of a located procedure (or the whole procedure)."""

    code: str
    procedure: str
    # The category field and its value; None for a located procedure without a category.
    field: str | None
    value: str | None
    label: Text
    # The department a report of this service goes to (Open311's `group`, `agency_responsible`).
    group: str
    # Offered in `services.json` (a value of the newest version), or only known from older reports.
    offered: bool


def category_field(procedure: Procedure) -> FormField | None:
    """The field whose value is a report's Open311 service: the one that routes cases to services, else
    the first public choice field."""
    choices = [f for f in procedure.fields if f.type is FieldType.CHOICE]
    routed = next((f for f in choices if any(c.service for c in f.choices)), None)
    return routed or next((f for f in choices if f.public is True), None)


def located_versions(catalogue: Catalogue) -> list[Procedure]:
    """Every version, of every procedure, whose place publishes its district: the reports Open311 serves."""
    return [
        p for code in catalogue.codes() for p in catalogue.versions[code].values() if p.located is not None
    ]


def _candidates(catalogue: Catalogue) -> Iterable[tuple[str, str | None, str | None, Text, str, bool]]:
    """(procedure, field, value, label, group, offered) of every service, newest definitions first."""
    for code in catalogue.codes():
        versions = sorted(
            (p for p in catalogue.versions[code].values() if p.located is not None),
            key=lambda p: p.version,
            reverse=True,
        )
        if not versions:
            continue
        newest, seen = versions[0], set[str | None]()
        field = category_field(newest)
        if field is None:
            yield code, None, None, newest.title, newest.service, catalogue.latest(code) is newest
            continue
        for version in versions:
            own = version.field(field.name)
            for choice in own.choices if own is not None else ():
                if choice.value in seen:
                    continue
                seen.add(choice.value)
                group = version.service_for({field.name: choice.value})
                offered = version is newest and catalogue.latest(code) is newest
                yield code, field.name, choice.value, choice.label, group, offered


def _code(procedure: str, value: str | None, *, namespaced: bool) -> str:
    if value is None:
        return procedure
    return f"{procedure}{SEPARATOR}{value}" if namespaced else value


class Open311Services:
    """The Open311 services of a catalogue, by code and by what a case's facts say."""

    def __init__(self, catalogue: Catalogue) -> None:
        found = list(_candidates(catalogue))
        values = [value or procedure for procedure, _, value, *_ in found]
        shared = {v for v in values if values.count(v) > 1}
        self._all = [
            Open311Service(
                code=_code(procedure, value, namespaced=value in shared),
                procedure=procedure,
                field=field,
                value=value,
                label=label,
                group=group,
                offered=offered,
            )
            for procedure, field, value, label, group, offered in found
        ]
        self._by_code = {s.code: s for s in self._all}
        self._by_case = {(s.procedure, s.value): s for s in self._all}

    def offered(self) -> list[Open311Service]:
        return [s for s in self._all if s.offered]

    def get(self, code: str) -> Open311Service | None:
        return self._by_code.get(code)

    def of_case(self, procedure: str, facts: dict[str, Any]) -> Open311Service | None:
        """The service of a case from its procedure and public facts (its category's value)."""
        field = next((s.field for s in self._all if s.procedure == procedure), None)
        value = facts.get(field) if field is not None else None
        return self._by_case.get((procedure, value if isinstance(value, str) else None))
