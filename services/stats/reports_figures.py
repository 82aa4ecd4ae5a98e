"""Street reports' figures, without I/O: what the queries read (`Facts`, per category × district × month)
added up for any grouping (the whole period, each district, each category, each row), then published with
the small ones suppressed.

The figures are exact: durations are kept per report (there are few enough), and a percentile is the
lower nearest rank at the 0-based rank q·(n−1), as stats states for every percentile it publishes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TypeVar

from services.stats import domain
from services.stats.report import Suppressing
from services.stats.reports_schemas import Durations, OpenReports, ReportFigures

G = TypeVar("G", bound=Hashable)


@dataclass(frozen=True, order=True)
class Key:
    """Where a figure is counted: the month it counts in, the report's category and district."""

    month: date
    category: str
    district: str


@dataclass(frozen=True)
class Done:
    key: Key  # the month of the report's first "done"
    seconds: float  # from its submission to then
    in_time: bool | None  # on or before its commitment date (None: no date known)


@dataclass(frozen=True)
class Open:
    category: str
    district: str
    seconds: float  # since its submission, now


@dataclass
class Facts:
    """What the queries read for a period: counts per key, and a line per report done or open."""

    received: dict[Key, int] = field(default_factory=dict)
    finals: dict[tuple[Key, str], int] = field(default_factory=dict)
    done: list[Done] = field(default_factory=list)
    checks: dict[Key, tuple[int, int]] = field(default_factory=dict)  # (said fixed, answers)
    open: list[Open] = field(default_factory=list)

    def cells(self) -> list[Key]:
        """Every category × district × month where anything was counted, in order."""
        found = {*self.received, *(k for k, _ in self.finals), *(d.key for d in self.done), *self.checks}
        return sorted(found)

    def steps(self) -> set[str]:
        return {step for _, step in self.finals}


@dataclass
class Tally:
    """One group's raw numbers."""

    received: int = 0
    finals: Counter[str] = field(default_factory=Counter)
    to_done: list[float] = field(default_factory=list)
    known: int = 0  # done with a commitment date
    in_time: int = 0
    answers: int = 0
    fixed: int = 0


def tallies(facts: Facts, group: Callable[[Key], G]) -> dict[G, Tally]:
    """The facts added up per group (`group(key)`)."""
    out: dict[G, Tally] = {}

    def of(key: Key) -> Tally:
        return out.setdefault(group(key), Tally())

    for key, n in facts.received.items():
        of(key).received += n
    for (key, step), n in facts.finals.items():
        of(key).finals[step] += n
    for done in facts.done:
        tally = of(done.key)
        tally.to_done.append(done.seconds)
        if done.in_time is not None:
            tally.known += 1
            tally.in_time += done.in_time
    for key, (fixed, answers) in facts.checks.items():
        of(key).fixed += fixed
        of(key).answers += answers
    return out


def open_ages(facts: Facts, group: Callable[[Open], G]) -> dict[G, list[float]]:
    out: dict[G, list[float]] = {}
    for report in facts.open:
        out.setdefault(group(report), []).append(report.seconds)
    return out


def quantile(ordered: Sequence[float], q: float) -> float:
    """The lower nearest rank at the 0-based rank q·(n−1) of sorted values."""
    return ordered[math.floor(q * (len(ordered) - 1) + 1e-9)]


class Publish(Suppressing):
    """Published figures, suppressing those over fewer than `threshold` reports (or answers); the final
    steps are listed in `steps`' order, each always present."""

    def __init__(self, *, threshold: int, steps: Iterable[str]) -> None:
        self.threshold, self.steps = threshold, list(steps)

    def figures(self, tally: Tally | None) -> ReportFigures:
        t = tally or Tally()
        return ReportFigures(
            received=self.count(t.received),
            final={step: self.count(t.finals.get(step, 0)) for step in self.steps},
            time_to_done=self.durations(t.to_done),
            done_within_commitment=self.share(t.in_time, t.known),
            confirmed_fixed=self.share(t.fixed, t.answers),
        )

    def open(self, ages: list[float] | None) -> OpenReports:
        ages = ages or []
        return OpenReports(open=self.count(len(ages)), age=self.durations(ages))

    def durations(self, seconds: list[float]) -> Durations:
        n = len(seconds)
        if domain.suppressed(n, self.threshold):
            return Durations(n=None, suppressed=True)
        if not n:
            return Durations(n=0)
        ordered = sorted(seconds)
        return Durations(
            n=n,
            p50_days=domain.in_days(quantile(ordered, 0.5)),
            p90_days=domain.in_days(quantile(ordered, 0.9)),
        )
