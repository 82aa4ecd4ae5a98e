"""A city brings its past cases: the good lines are imported once, bad ones are reported by line, and
stats folds them like live cases."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Env
from tests.waiting import eventually, query, scalar


def past_case(
    reference: str, *, decided_after_days: int, waited_days: int = 0, **extra: Any
) -> dict[str, Any]:
    start = "2024-03-04T09:12:00+01:00"
    timeline: list[dict[str, Any]] = [{"at": start, "event": "submitted"}]
    if waited_days:
        timeline += [
            {"at": "2024-03-05T09:12:00+01:00", "event": "waiting-for-citizen"},
            {"at": f"2024-03-{5 + waited_days:02d}T09:12:00+01:00", "event": "citizen-replied"},
        ]
    decided = f"2024-03-{4 + decided_after_days:02d}T09:12:00+01:00"
    timeline.append({"at": decided, "event": "decided", "outcome": "accepted"})
    return {
        "reference": reference,
        "procedure": "permis-construire",
        "channel": "counter",
        "facts": {"district": "centre"},
        "timeline": timeline,
        **extra,
    }


async def run_import(env: Env, file: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.intake.imports",
        str(file),
        env={**os.environ, "DATABASE_URL": env.database_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    return int(proc.returncode or 0), out.decode()


@pytest.fixture
def history(tmp_path: Path) -> Path:
    good = [
        past_case(f"PC-2024-{i:04d}", decided_after_days=10 + i, waited_days=3 if i % 2 else 0)
        for i in range(6)
    ]
    lines = [json.dumps(c) for c in good[:3]]
    lines.append("{not json")
    lines.append(json.dumps(past_case("PC-2024-9001", decided_after_days=5, procedure="permis-de-voler")))
    future = past_case("PC-2024-9002", decided_after_days=5)
    future["timeline"][-1]["at"] = "2999-01-01T00:00:00+01:00"
    lines.append(json.dumps(future))
    backwards = past_case("PC-2024-9003", decided_after_days=5)
    backwards["timeline"].insert(1, {"at": "2024-03-20T00:00:00+01:00", "event": "waiting-for-citizen"})
    lines.append(json.dumps(backwards))
    lines.append(json.dumps({**past_case("PC-2024-9004", decided_after_days=5), "name": "Camille Martin"}))
    lines += [json.dumps(c) for c in good[3:]]
    file = tmp_path / "history.jsonl"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return file


async def test_good_lines_are_imported_once_and_bad_ones_reported_by_line(
    intake: httpx.AsyncClient, stats: httpx.AsyncClient, env: Env, history: Path
) -> None:
    code, said = await run_import(env, history)
    assert code == 1, said
    assert "imported 6, skipped 0 (imported before), rejected 5" in said
    assert "line 4 (no reference): not JSON" in said
    assert "line 5 (PC-2024-9001): unknown procedure 'permis-de-voler'" in said
    assert "line 6 (PC-2024-9002): timeline[1] (decided): 2999-01-01T00:00:00+01:00 is in the future" in said
    assert "line 7 (PC-2024-9003): timeline[2] (decided): earlier than the entry before it" in said
    assert "line 8 (PC-2024-9004)" in said and "name: Extra inputs are not permitted" in said

    code, said = await run_import(env, history)
    assert "imported 0, skipped 6 (imported before), rejected 5" in said

    assert await scalar(env.database_url, "SELECT count(*) FROM intake.imported_cases") == 6
    assert await scalar(env.database_url, "SELECT count(*) FROM intake.cases") == 0  # no tracking code
    bodies = await query(env.database_url, "SELECT envelope::text FROM intake.events")
    assert len(bodies) == 6 and not any("PC-2024" in b[0] for b in bodies)  # the reference stays here

    await eventually(
        lambda: scalar(env.database_url, "SELECT count(*) FROM stats.cases"), until=lambda n: n == 6
    )
    march = (
        await stats.get("/v1/stats/procedures/permis-construire", params={"from": "2024-03", "to": "2024-03"})
    ).json()["series"][0]
    assert march["submitted"]["n"] == 6 and march["channels"]["counter"]["n"] == 6
    assert march["decided"]["accepted"]["n"] == 6
    elapsed, legal = march["time_to_decision"]["elapsed"], march["time_to_decision"]["legal"]
    assert elapsed["mean_days"] == pytest.approx(sum(10 + i for i in range(6)) / 6, abs=0.01)
    assert legal["mean_days"] == pytest.approx(elapsed["mean_days"] - 3 * 3 / 6, abs=0.01)
