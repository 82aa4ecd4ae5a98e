"""Builders for test data: valid submissions for each procedure, with overrides."""

from __future__ import annotations

from typing import Any

from devtools.demo import APPLICANT, VALID_DATA


def make_case(
    procedure: str = "permis-construire",
    *,
    data: dict[str, Any] | None = None,
    applicant: dict[str, Any] | None = None,
    channel: str = "web",
    **data_overrides: Any,
) -> dict[str, Any]:
    return {
        "procedure": procedure,
        "data": {**(VALID_DATA[procedure] if data is None else data), **data_overrides},
        "applicant": {**APPLICANT, **(applicant or {})},
        "channel": channel,
    }
