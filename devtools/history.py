"""`make demo`: fill a running system with a realistic history, through the historical import.

Eighteen months of past cases for the five procedures: seasonal load (building permits in spring, parking
cards in September, street reports in winter), delays per step drawn around each procedure's usual ones,
requests for documents, tacit decisions, a summer when permits pile up, digital take-up growing month by
month, and the cases still open today. Deterministic (a fixed seed): the same figures every time.

    python -m devtools.history [--months 18] [--scale 1.0] [--out FILE]   (DATABASE_URL: intake's)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from services.intake.imports import import_lines
from services.intake.settings import IntakeSettings
from shared.db import create_pool
from shared.places import Districts, Point, cell_of
from shared.procedures import CITY_TIMEZONE, Catalogue, FieldType, Procedure, load_catalogue

SEED = 20_260_322


@dataclass(frozen=True)
class Profile:
    """How one procedure behaves here: cases a month, its seasons and its delays (in days)."""

    per_month: int
    season: dict[int, float]  # month number -> load factor (1 when absent)
    median_days: float
    spread: float  # lognormal sigma
    asks_documents: float  # share of cases asked for documents
    tacit: float  # share of cases decided by silence at the deadline
    rejected: float
    withdrawn: float


PROFILES = {
    "permis-construire": Profile(
        40, {3: 1.4, 4: 1.6, 5: 1.5, 8: 0.5, 12: 0.7}, 42, 0.35, 0.35, 0.05, 0.12, 0.04
    ),
    "declaration-prealable": Profile(70, {4: 1.4, 5: 1.5, 6: 1.3, 8: 0.6}, 21, 0.35, 0.25, 0.06, 0.08, 0.03),
    "acte-naissance": Profile(260, {7: 1.2, 8: 1.3}, 2.5, 0.6, 0.03, 0.0, 0.02, 0.01),
    "carte-stationnement-resident": Profile(110, {1: 1.3, 9: 2.2, 10: 1.4}, 8, 0.5, 0.15, 0.0, 0.05, 0.02),
    "signalement-voirie": Profile(180, {1: 1.5, 2: 1.4, 7: 1.2, 12: 1.3}, 6, 0.8, 0.0, 0.0, 0.05, 0.15),
}
# One summer the building-permit service is short of staff: its cases take 60 % longer.
SLOW_SUMMER = {"permis-construire": 1.6, "declaration-prealable": 1.4}


def _month_start(month: date) -> datetime:
    return datetime.combine(month, time(8), tzinfo=CITY_TIMEZONE)


def _months(count: int, today: date) -> list[date]:
    first = date(today.year, today.month, 1)
    months = []
    for back in range(count - 1, -1, -1):
        index = first.year * 12 + first.month - 1 - back
        months.append(date(index // 12, index % 12 + 1, 1))
    return months


def _facts(procedure: Procedure, rng: random.Random) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for f in procedure.fields:
        if not f.public:
            continue
        if f.publishes_district and procedure.districts is not None:
            facts.update(_place(procedure.districts, rng))
        elif f.choices:
            facts[f.name] = rng.choice(f.choices).value
        elif f.type in (FieldType.INTEGER, FieldType.NUMBER):
            facts[f.name] = int(min(f.maximum or 400, max(f.minimum or 5, rng.lognormvariate(4.2, 0.6))))
    return facts


def _place(districts: Districts, rng: random.Random) -> dict[str, str]:
    """A street report's published place: a district (the centre, busier, more often) and the H3 cell of
    a point drawn inside its polygon."""
    chosen = rng.choices(list(districts), [3 if d.code == "centre" else 1 for d in districts])[0]
    west, south, east, north = chosen.geometry.bounds
    while True:
        point = Point(rng.uniform(south, north), rng.uniform(west, east))
        found = districts.containing(point)
        if found is not None and found.code == chosen.code:
            return {"district": chosen.code, "cell": cell_of(point)}


def _channel(rng: random.Random, progress: float) -> str:
    web = 0.55 + 0.25 * progress  # digital take-up grows over the period
    return rng.choices(
        ["web", "counter", "phone", "mail"], [web, (1 - web) * 0.55, (1 - web) * 0.15, (1 - web) * 0.3]
    )[0]


def _case(
    code: str,
    procedure: Procedure,
    profile: Profile,
    submitted: datetime,
    slow: float,
    rng: random.Random,
    now: datetime,
) -> dict[str, Any]:
    timeline: list[dict[str, Any]] = [{"at": submitted, "event": "submitted"}]
    at = submitted
    if rng.random() < profile.asks_documents:
        at += timedelta(days=rng.uniform(2, 10))
        timeline.append({"at": at, "event": "waiting-for-citizen"})
        at += timedelta(days=rng.lognormvariate(math.log(9), 0.6))
        timeline.append({"at": at, "event": "citizen-replied"})
    rule = procedure.legal_deadline
    deadline_days = (rule.months * 30 + rule.days) if rule else 90
    if rng.random() < profile.tacit and rule is not None:
        outcome, decided = (
            "tacit-acceptance",
            submitted + timedelta(days=deadline_days + 1) + (at - submitted),
        )
    else:
        draw = rng.random()
        outcome = (
            "withdrawn"
            if draw < profile.withdrawn
            else "rejected"
            if draw < profile.withdrawn + profile.rejected
            else "accepted"
        )
        decided = at + timedelta(days=profile.median_days * slow * rng.lognormvariate(0, profile.spread))
        due = (
            submitted
            + timedelta(days=deadline_days)
            + (at - submitted)
            - (timeline[1]["at"] - submitted if len(timeline) > 1 else timedelta(0))
        )
        if rule is not None and rule.silence.value != "nothing" and decided > due and outcome != "withdrawn":
            # Past the deadline, silence decides (silence vaut accord, or rejet).
            outcome, decided = (
                f"tacit-{'acceptance' if rule.silence.value == 'acceptance' else 'rejection'}",
                due + timedelta(hours=1),
            )
    if decided < now:
        timeline.append({"at": decided, "event": "decided", "outcome": outcome})
    else:
        timeline = [t for t in timeline if t["at"] < now]
    return {
        "reference": f"{code[:2].upper()}-{submitted:%Y%m%d%H%M%S}-{rng.randrange(10**6):06d}",
        "procedure": code,
        "facts": _facts(procedure, rng),
        "timeline": [{**t, "at": t["at"].isoformat(timespec="seconds")} for t in timeline],
    }


def generate(
    catalogue: Catalogue, *, months: int = 18, scale: float = 1.0, now: datetime | None = None
) -> list[dict[str, Any]]:
    now = now or datetime.now(UTC)
    rng = random.Random(SEED)
    periods = _months(months, now.astimezone(CITY_TIMEZONE).date())
    cases = []
    for index, month in enumerate(periods):
        progress = index / max(1, len(periods) - 1)
        summer_slow = month.month in (6, 7, 8) and index < len(periods) // 2 + 3
        for code, profile in PROFILES.items():
            procedure = catalogue.latest(code)
            if procedure is None:
                continue
            count = round(
                profile.per_month * profile.season.get(month.month, 1.0) * scale * rng.uniform(0.9, 1.1)
            )
            slow = SLOW_SUMMER.get(code, 1.0) if summer_slow else 1.0
            for _ in range(count):
                submitted = _month_start(month) + timedelta(days=rng.uniform(0, 27.5))
                if submitted >= now:
                    continue
                case = _case(code, procedure, profile, submitted, slow, rng, now)
                case["channel"] = _channel(rng, progress)
                cases.append(case)
    return cases


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.history", description=__doc__.split("\n")[0])
    parser.add_argument("--months", type=int, default=18)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every procedure's monthly load")
    parser.add_argument("--out", type=Path, help="also write the JSON Lines here")
    args = parser.parse_args(argv)
    settings = IntakeSettings()
    cases = generate(load_catalogue(settings.procedures_dir), months=args.months, scale=args.scale)
    lines = [json.dumps(c, ensure_ascii=False) for c in cases]
    if args.out:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(
        f"importing {len(lines)} past cases over {args.months} months into {settings.database_url.split('@')[-1]}"
    )
    pool = await create_pool(settings.database_url, max_size=2)
    try:
        summary = await import_lines(
            pool,
            enumerate(lines, start=1),
            load_catalogue(settings.procedures_dir),
            progress=sys.stderr,
            total=len(lines),
        )
    finally:
        await pool.close()
    print(file=sys.stderr)
    print(
        f"imported {summary.imported}, skipped {summary.skipped} (imported before), rejected {len(summary.rejected)}"
    )
    for bad in summary.rejected[:10]:
        print(f"line {bad['line']}: {bad['error']}")
    print("stats folds them in a minute or two: http://127.0.0.1:8004/v1/stats/procedures")
    return 1 if summary.rejected else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
