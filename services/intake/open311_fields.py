"""What a located procedure's form fields become through Open311 (GeoReport v2).

The spec's own parameters take the fields they name: `service_code` the category, `lat`/`long` or
`address_string` the place, `media_url` the first link field (a street report's `photo_url`),
`description` the field of that name. Every other field is an attribute of the service definition
(`attribute[code]=value`), its type mapped to the spec's datatypes; file fields cannot be sent through
Open311's form and are left out (a form that requires one cannot take Open311 reports).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from shared.i18n import translate
from shared.open311 import category_field
from shared.procedures import FieldType, FormField, Procedure

DESCRIPTION = "description"
DATATYPES = {
    FieldType.STRING: "string",
    FieldType.EMAIL: "string",
    FieldType.PHONE: "string",
    FieldType.URL: "string",
    FieldType.LOCATION: "string",  # another place than the report's: its address
    FieldType.TEXT: "text",
    FieldType.INTEGER: "number",
    FieldType.NUMBER: "number",
    FieldType.DATE: "datetime",
    FieldType.CHOICE: "singlevaluelist",
    FieldType.BOOLEAN: "singlevaluelist",
}


@dataclass(frozen=True)
class Door:
    """A located procedure's fields, as Open311 sends them."""

    procedure: Procedure
    category: FormField | None
    location: FormField
    media: FormField | None
    description: FormField | None
    attributes: tuple[FormField, ...]

    @classmethod
    def of(cls, procedure: Procedure) -> Door:
        location = procedure.located
        assert location is not None, "only located procedures are Open311 services"
        category = category_field(procedure)
        media = next((f for f in procedure.fields if f.type is FieldType.URL), None)
        description = procedure.field(DESCRIPTION)
        taken = {f.name for f in (category, location, media, description) if f is not None}
        attributes = tuple(
            f for f in procedure.fields if f.name not in taken and f.type is not FieldType.FILE
        )
        return cls(procedure, category, location, media, description, attributes)

    def attribute(self, code: str) -> FormField | None:
        return next((f for f in self.attributes if f.name == code), None)


def _values(f: FormField, lang: str) -> list[dict[str, str]] | None:
    if f.type is FieldType.CHOICE:
        return [{"key": c.value, "name": c.label.in_(lang)} for c in f.choices]
    if f.type is FieldType.BOOLEAN:
        return [
            {"key": "true", "name": translate("open311.yes", lang)},
            {"key": "false", "name": translate("open311.no", lang)},
        ]
    return None


def attribute_of(f: FormField, order: int, lang: str) -> dict[str, Any]:
    """A field as a service definition's attribute."""
    hint = f.pattern_hint or f.help
    attribute: dict[str, Any] = {
        "variable": True,
        "code": f.name,
        "datatype": DATATYPES[f.type],
        "required": f.required,
        "datatype_description": hint.in_(lang) if hint else None,
        "order": order,
        "description": f.label.in_(lang),
    }
    if (values := _values(f, lang)) is not None:
        attribute["values"] = values
    return attribute


def value_of(f: FormField, text: str) -> Any:
    """A posted attribute's text as the form's value; what cannot be read is passed on as sent, for the
    procedure's check to say what is wrong with it in the usual words."""
    text = text.strip()
    if f.type in (FieldType.INTEGER, FieldType.NUMBER):
        try:
            number = float(text)
        except ValueError:
            return text
        if not math.isfinite(number):
            return text
        return int(number) if f.type is FieldType.INTEGER and number.is_integer() else number
    if f.type is FieldType.BOOLEAN:
        return {"true": True, "false": False}.get(text.lower(), text)
    if f.type is FieldType.DATE:
        return text[:10]  # a datetime's day
    if f.type is FieldType.LOCATION:
        return {"address": text}
    return text
