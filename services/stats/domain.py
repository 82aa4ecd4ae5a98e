"""stats' rules, without I/O: the month an instant belongs to, how a duration becomes a sketch bin and bins
become percentiles, what a decision counts as, and which figures are too small to publish.

Durations are kept as DDSketch bins (logarithmic mapping, 1 % relative accuracy): a duration `d` falls in
bin `k = ceil(log(d) / log(gamma))`, gamma = (1 + 0.01) / (1 - 0.01), and the bin's representative value is
within 1 % of every duration in it. Bins of months add up into quarters and years, and a percentile read
from them is within 1 % of the exact one, however many cases there are: a query reads bins, never cases
(but the ones still open, for the month under way: `bin_floors_us` lets SQL bin their ages as `bin_of` does).
"""

from __future__ import annotations

import functools
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from itertools import accumulate

from ddsketch.mapping import LogarithmicMapping

from shared.procedures import CITY_TIMEZONE

RELATIVE_ACCURACY = 0.01
# The durations whose running totals (months to date) the fold keeps as well, so that a period of many
# months reads two of them rather than all its months: the time to decision on both clocks, and per step.
RUNNING = ("elapsed", "legal", "step:")
LONG_PERIOD = 6  # months: from this many, a period is read from running totals
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


MAX_MICROSECONDS = 2**63 - 1  # PostgreSQL's bigint


@functools.cache
def bin_floors_us() -> tuple[int, ...]:
    """The shortest duration of each bin from 1 up, in whole microseconds: a duration of `us` microseconds
    (a whole number, as PostgreSQL's timestamps give them) is in bin `bisect_right(floors, us)`, which SQL
    computes as `width_bucket(us, floors)`: exactly `bin_of(us / 1_000_000)`, float rounding included,
    because `bin_of` never decreases as durations grow."""
    floors: list[int] = []
    below = 1_000_000  # one second and less: bin 0
    while bin_of(MAX_MICROSECONDS / 1_000_000) > len(floors):
        wanted = len(floors) + 1
        # bin_of(below) < wanted <= bin_of(above): widen, then halve the gap.
        step, above = max(1, below // 1000), below + 1
        while bin_of(above / 1_000_000) < wanted:
            below, above, step = above, min(MAX_MICROSECONDS, above + step), step * 2
        while above - below > 1:
            middle = (below + above) // 2
            if bin_of(middle / 1_000_000) >= wanted:
                above = middle
            else:
                below = middle
        floors.append(above)
    return tuple(floors)


def month_of(at: datetime) -> date:
    """The calendar month (in the city's time zone) an instant belongs to, as its first day."""
    local = at.astimezone(CITY_TIMEZONE)
    return date(local.year, local.month, 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def previous_month(month: date) -> date:
    return date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


def month_end(month: date) -> datetime:
    """The instant a month ends: midnight, city time, on the first day of the next one."""
    return datetime.combine(next_month(month), time(0), tzinfo=CITY_TIMEZONE)


def is_running(measure: str) -> bool:
    return any(measure == m or (m.endswith(":") and measure.startswith(m)) for m in RUNNING)


def running_span(months: list[date], *, sealed: date | None) -> tuple[date, date] | None:
    """For a period of many consecutive months, the span (after, through] read as the difference of the
    running totals at `through` (the last month sealed, at most) and at `after`; None: read month by month."""
    if sealed is None or len(months) < LONG_PERIOD:
        return None
    through = min(months[-1], sealed)
    if len(months_between(months[0], through)) < LONG_PERIOD:
        return None
    return previous_month(months[0]), through


def live_end(month: date, *, sealed: date | None, now: datetime) -> datetime | None:
    """When the cases still open are aged for the backlog of `month`: at its end, or now for the month
    under way (and later ones). None once the fold has seen the month end: it has counted them then."""
    if sealed is not None and month <= sealed:
        return None
    return min(month_end(month), now)


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


@dataclass(frozen=True)
class Sketch:
    """Durations as a query reads them: the non-empty bins, in increasing order, and how many in each."""

    bins: Sequence[int] = ()
    counts: Sequence[int] = ()

    @classmethod
    def of(cls, bins: Mapping[int, int]) -> Sketch:
        ordered = sorted(b for b, n in bins.items() if n)
        return cls(tuple(ordered), tuple(bins[b] for b in ordered))

    @property
    def n(self) -> int:
        return sum(self.counts)

    def quantiles(self, *qs: float) -> list[float | None]:
        """Each q-quantile (lower nearest rank, 0-based rank q·(n−1)) of the durations, in seconds."""
        seen = list(accumulate(self.counts))
        if not seen or not seen[-1]:
            return [None for _ in qs]
        # The first bin where more durations than the rank have been seen.
        return [value_of(self.bins[bisect_right(seen, q * (seen[-1] - 1))]) for q in qs]


def quantile(bins: Mapping[int, int], q: float) -> float | None:
    """The q-quantile (lower nearest rank, 0-based rank q·(n−1)) of the durations in `bins`, in seconds."""
    return Sketch.of(bins).quantiles(q)[0]


def distribution(bins: Mapping[int, int] | Sketch, *, total_seconds: float | None = None) -> Distribution:
    sketch = bins if isinstance(bins, Sketch) else Sketch.of(bins)
    n = sketch.n
    mean = total_seconds / n if n and total_seconds is not None else None
    p50, p90 = sketch.quantiles(0.5, 0.9)
    return Distribution(n=n, p50=p50, p90=p90, mean=mean)


def merged(sketches: Iterable[Sketch]) -> Sketch:
    """The sketches of several months (or of the cases decided since and those still open) as one."""
    parts = sorted((s for s in sketches if s.bins), key=lambda s: len(s.bins), reverse=True)
    if len(parts) <= 1:
        return parts[0] if parts else Sketch()
    bins = dict(zip(parts[0].bins, parts[0].counts, strict=True))
    add = bins.get
    for part in parts[1:]:
        for bin_, count in zip(part.bins, part.counts, strict=True):
            bins[bin_] = add(bin_, 0) + count
    ordered = sorted(bins)
    return Sketch(ordered, [bins[b] for b in ordered])


def difference(total: Sketch, before: Sketch) -> Sketch:
    """A running total less an earlier one: the durations counted in between."""
    if not before.bins:
        return total
    bins = dict(zip(total.bins, total.counts, strict=True))
    for bin_, count in zip(before.bins, before.counts, strict=True):
        bins[bin_] -= count
    kept = [b for b in total.bins if bins[b]]
    return Sketch(kept, [bins[b] for b in kept])


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
