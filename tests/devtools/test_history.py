"""`make demo`'s history is realistic and every line of it passes the historical import's checks."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

from devtools.history import generate
from services.intake.imports import Summary, parse
from shared.procedures import load_catalogue
from shared.settings import DEFAULT_PROCEDURES_DIR

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def test_the_demo_history_is_imported_whole_and_looks_like_a_city() -> None:
    catalogue = load_catalogue(DEFAULT_PROCEDURES_DIR)
    cases = generate(catalogue, months=18, now=NOW)
    summary = Summary()
    imported = list(parse(enumerate((json.dumps(c) for c in cases), start=1), catalogue, summary))
    assert summary.rejected == []
    assert len(imported) == len(cases) > 5000
    assert {c["procedure"] for c in cases} == set(catalogue.codes())
    assert generate(catalogue, months=18, now=NOW) == cases  # the same history every time

    last = [c["timeline"][-1] for c in cases]
    outcomes = Counter(t.get("outcome") for t in last)
    assert outcomes[None] > 50  # some cases are still open today
    assert outcomes["tacit-acceptance"] > 10 and outcomes["rejected"] > 50 and outcomes["withdrawn"] > 10
    asked = sum(1 for c in cases if any(t["event"] == "waiting-for-citizen" for t in c["timeline"]))
    assert 0.05 < asked / len(cases) < 0.3
    permits = Counter(c["timeline"][0]["at"][:7] for c in cases if c["procedure"] == "permis-construire")
    assert permits["2026-04"] > 1.5 * permits["2026-08"]  # spring is the season of building permits
