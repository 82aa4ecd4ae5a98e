"""stats' rules, without I/O: the month an instant belongs to, how a duration becomes a sketch bin and bins
become percentiles, what a decision counts as, and which figures are too small to publish.

Durations are kept as DDSketch bins (logarithmic mapping, 1 % relative accuracy): a duration `d` falls in
bin `k = ceil(log(d) / log(gamma))`, gamma = (1 + 0.01) / (1 - 0.01), and the bin's representative value is
within 1 % of every duration in it. Bins of months add up into quarters and years, and a percentile read
from them is within 1 % of the exact one, however many cases there are: a query reads bins, never cases.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum

from ddsketch.mapping import LogarithmicMapping

from shared.procedures import CITY_TIMEZONE

RELATIVE_ACCURACY = 0.01
MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
SECONDS_PER_DAY = 86_400.0
# Shorter durations are counted as one second (the sketch has no bin for zero).
MIN_SECONDS = 1.0


class Decision(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    TACIT_ACCEPTANCE = "tacit-acceptance"
    TACIT_REJECTION = "tacit-rejection"
    CLOSED = "closed"  # withdrawn, or closed without a decision: no time to decision

    @property
    def is_decision(self) -> bool:
        return self is not Decision.CLOSED


def decision_of(outcome: str, *, tacit: bool) -> Decision:
    if outcome == "accepted":
        return Decision.TACIT_ACCEPTANCE if tacit else Decision.ACCEPTED
    if outcome == "rejected":
        return Decision.TACIT_REJECTION if tacit else Decision.REJECTED
    return Decision.CLOSED


def imported_decision(outcome: str) -> Decision:
    """The outcome of a case imported from a former system (`withdrawn` is closed without a decision)."""
    return Decision.CLOSED if outcome == "withdrawn" else Decision(outcome)


def bin_of(seconds: float) -> int:
    return int(MAPPING.key(max(seconds, MIN_SECONDS)))


def value_of(bin_: int) -> float:
    """The representative duration of a bin, in seconds."""
    return float(MAPPING.value(bin_))


def month_of(at: datetime) -> date:
    """The calendar month (in the city's time zone) an instant belongs to, as its first day."""
    local = at.astimezone(CITY_TIMEZONE)
    return date(local.year, local.month, 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def month_end(month: date) -> datetime:
    """The instant a month ends: midnight, city time, on the first day of the next one."""
    return datetime.combine(next_month(month), time(0), tzinfo=CITY_TIMEZONE)


def months_between(first: date, last: date) -> list[date]:
    months, month = [], date(first.year, first.month, 1)
    while month <= last:
        months.append(month)
        month = next_month(month)
    return months


def month_ends_crossed(start: datetime, end: datetime) -> list[date]:
    """The months at whose end a case open from `start` to `end` was still open."""
    crossed, month = [], month_of(start)
    while month_end(month) <= end:
        crossed.append(month)
        month = next_month(month)
    return crossed


def period_of(month: date, period: str) -> str:
    """The label of the month, quarter or year a month belongs to: 2026-03, 2026-Q1, 2026."""
    if period == "year":
        return f"{month.year}"
    if period == "quarter":
        return f"{month.year}-Q{(month.month - 1) // 3 + 1}"
    return f"{month.year}-{month.month:02d}"


@dataclass(frozen=True)
class Distribution:
    n: int
    p50: float | None
    p90: float | None
    mean: float | None


def quantile(bins: Mapping[int, int], q: float) -> float | None:
    """The q-quantile (lower nearest rank, 0-based rank q·(n−1)) of the durations in `bins`, in seconds."""
    n = sum(bins.values())
    if n == 0:
        return None
    rank, seen = q * (n - 1), 0
    for bin_ in sorted(bins):
        seen += bins[bin_]
        if seen > rank:
            return value_of(bin_)
    return value_of(max(bins))


def distribution(bins: Mapping[int, int], *, total_seconds: float | None = None) -> Distribution:
    n = sum(bins.values())
    mean = total_seconds / n if n and total_seconds is not None else None
    return Distribution(n=n, p50=quantile(bins, 0.5), p90=quantile(bins, 0.9), mean=mean)


def merge(bin_sets: Iterable[Mapping[int, int]]) -> dict[int, int]:
    merged: dict[int, int] = {}
    for bins in bin_sets:
        for bin_, count in bins.items():
            merged[bin_] = merged.get(bin_, 0) + count
    return merged


def in_days(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / SECONDS_PER_DAY, 2)


def suppressed(n: int, threshold: int) -> bool:
    """A figure computed over fewer than `threshold` cases (but some) is not published."""
    return 0 < n < threshold


def share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)
