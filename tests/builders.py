"""Builders for test data: valid submissions for each procedure, with overrides."""

from __future__ import annotations

from typing import Any

VALID_DATA: dict[str, dict[str, Any]] = {
    "permis-construire": {
        "parcel_address": "12 rue des Lilas, 69003 Lyon",
        "cadastral_reference": "AB 123",
        "district": "est",
        "floor_area_m2": 120,
        "project_description": "Maison individuelle de plain-pied avec garage.",
    },
}

APPLICANT = {"name": "Camille Martin", "email": "camille.martin@example.org", "phone": "06 12 34 56 78",
             "language": "fr"}


def make_case(procedure: str = "permis-construire", *, data: dict[str, Any] | None = None,
              applicant: dict[str, Any] | None = None, channel: str = "web", **data_overrides: Any) -> dict[str, Any]:
    return {
        "procedure": procedure,
        "data": {**(VALID_DATA[procedure] if data is None else data), **data_overrides},
        "applicant": {**APPLICANT, **(applicant or {})},
        "channel": channel,
    }
