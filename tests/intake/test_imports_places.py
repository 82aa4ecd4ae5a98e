"""Past street reports brought from the city's former system carry their published place, as live ones do:
a district of the polygons and an H3 cell of the public size; their category routes them to its service."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import h3
import pytest

from devtools.history import generate
from services.intake.imports import BadLine, ImportLine, check
from shared.places import Point, cell_of
from shared.procedures import load_catalogue
from shared.settings import DEFAULT_PROCEDURES_DIR

CATALOGUE = load_catalogue(DEFAULT_PROCEDURES_DIR)
NOW = datetime(2026, 12, 1, tzinfo=UTC)
CELL = cell_of(Point(45.7578, 4.8320))


def _line(**facts: Any) -> ImportLine:
    return ImportLine.model_validate(
        {
            "reference": "DMR-2025-0001",
            "procedure": "signalement-voirie",
            "channel": "phone",
            "facts": facts,
            "timeline": [
                {"at": "2025-05-02T08:00:00+02:00", "event": "submitted"},
                {"at": "2025-05-09T08:00:00+02:00", "event": "decided", "outcome": "accepted"},
            ],
        }
    )


def test_a_past_report_keeps_its_district_and_cell_and_goes_to_its_categorys_service() -> None:
    event = check(_line(category="bruit-nocturne", district="centre", cell=CELL), CATALOGUE, now=NOW)
    assert event.facts == {"category": "bruit-nocturne", "district": "centre", "cell": CELL}
    assert event.service == "police-municipale"


@pytest.mark.parametrize(
    ("facts", "words"),
    [
        ({"district": "banlieue"}, "is not one of centre, nord, sud, est, ouest"),
        ({"cell": h3.cell_to_parent(CELL, 9)}, "not an H3 index of resolution 10"),  # coarser is refused too
        ({"cell": "rue de la République"}, "not an H3 index"),
        ({"location": "45.7578,4.8320"}, "not public fields"),  # the exact point is never imported
    ],
)
def test_a_wrong_place_is_refused_saying_what_is_wrong(facts: dict[str, Any], words: str) -> None:
    with pytest.raises(BadLine, match=words):
        check(_line(category="eclairage", **facts), CATALOGUE, now=NOW)


def test_the_demo_history_gives_reports_a_place_in_their_district() -> None:
    reports = [
        c for c in generate(CATALOGUE, months=2, scale=0.5, now=NOW) if c["procedure"] == "signalement-voirie"
    ]
    assert reports
    districts = CATALOGUE.latest("signalement-voirie").districts  # type: ignore[union-attr]
    for report in reports:
        event = check(ImportLine.model_validate({**report, "channel": "web"}), CATALOGUE, now=NOW)
        assert set(event.facts) == {"category", "district", "cell"}
        assert districts.get(str(event.facts["district"])) is not None
