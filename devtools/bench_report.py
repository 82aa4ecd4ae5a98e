"""What `make bench` reports: one `Figure` per line of issue 12's table, printed and written as JSON and
Markdown under bench-results/.

A figure is Suivi's number beside its baseline measured in the same run (`ratio` = Suivi ÷ baseline, or,
for the stats query, large ÷ small), and the target it is held to. Latency figures (visibility) have no
baseline: their target is on the number itself.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    path: str  # what is measured, as the issue names it: "tracking lookup by code, warm"
    measured_as: str  # how: "req/s at 64 connections vs a bare FastAPI primary-key select"
    unit: str  # of `value` and `baseline`: "req/s", "events/s", "ms"
    value: float  # Suivi's
    baseline: float | None  # the baseline's, same unit, same run; None for a latency target
    target: str  # as printed: "≥ 0.8×, p99 ≤ 50 ms"
    passed: bool
    details: dict[str, Any] = field(default_factory=dict)  # p50/p99, errors, counts: JSON only
    ratio: float | None = None  # Suivi ÷ baseline unless given (stats query: large ÷ small)
    shown: str | None = None  # how the table shows Suivi's figure, when the value alone does not say it

    def __post_init__(self) -> None:
        if self.ratio is None and self.baseline:
            self.ratio = self.value / self.baseline


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return f"{text} {unit}".strip()


def markdown(figures: Sequence[Figure]) -> str:
    lines = [
        "| path | measured as | Suivi | baseline | ratio | target | result |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for f in figures:
        ratio = "-" if f.ratio is None else f"{f.ratio:.2f}×"
        lines.append(
            f"| {f.path} | {f.measured_as} | {f.shown or _number(f.value, f.unit)} "
            f"| {_number(f.baseline, f.unit)} "
            f"| {ratio} | {f.target} | {'pass' if f.passed else 'FAIL'} |"
        )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def write(
    directory: Path, figures: Sequence[Figure], *, context: dict[str, Any], notes: Sequence[str]
) -> Path:
    """bench-results/latest.json and latest.md (and a copy of each named by the time of the run)."""
    directory.mkdir(parents=True, exist_ok=True)
    when = datetime.now(UTC)
    report = {
        "when": when.isoformat(timespec="seconds"),
        "machine": machine(),
        **context,
        "passed": all(f.passed for f in figures),
        "figures": [asdict(f) for f in figures],
    }
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    page = (
        f"# make bench, {report['when']}\n\n{markdown(figures)}\n\n"
        + "\n".join(f"- {line}" for line in notes)
        + "\n"
    )
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    for name in ("latest", stamp):
        (directory / f"{name}.json").write_text(text, encoding="utf-8")
        (directory / f"{name}.md").write_text(page, encoding="utf-8")
    return directory / "latest.md"
