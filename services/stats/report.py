"""From stored aggregates to published figures, without I/O: months merged into periods, percentiles read
from the merged bins, the live backlog added, and small figures suppressed."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from services.stats import domain
from services.stats.domain import Decision
from services.stats.schemas import (
    Backlog,
    Count,
    Distribution,
    PeriodFigures,
    Satisfaction,
    Share,
    TimeToDecision,
)

CHANNELS = ("web", "counter", "phone", "mail")
RATINGS = ("1", "2", "3", "4", "5")


@dataclass
class Aggregates:
    """What the database holds for one procedure (and district) over a range of months."""

    counts: dict[tuple[date, str], int] = field(default_factory=dict)
    bins: dict[tuple[date, str], dict[int, int]] = field(default_factory=lambda: defaultdict(dict))
    sums: dict[tuple[date, str], float] = field(default_factory=dict)
    # When each case still open now was submitted (they are few: the backlog, not the history).
    open_since: list[datetime] = field(default_factory=list)


@dataclass
class Period:
    label: str
    months: list[date]


def periods(months: list[date], period: str) -> list[Period]:
    grouped: dict[str, list[date]] = {}
    for month in months:
        grouped.setdefault(domain.period_of(month, period), []).append(month)
    return [Period(label, ms) for label, ms in grouped.items()]


class Figures:
    """Builds the published figures of one period, suppressing those over fewer than `threshold` cases."""

    def __init__(self, data: Aggregates, *, threshold: int, now: datetime) -> None:
        self.data, self.threshold, self.now = data, threshold, now

    def period(self, period: Period) -> PeriodFigures:
        months = period.months
        submitted = self._sum(months, "submitted")
        web = self._sum(months, "channel:web")
        known, met = self._sum(months, "deadline:known"), self._sum(months, "deadline:met")
        steps = sorted({m[5:] for (mo, m) in self.data.bins if mo in months and m.startswith("step:")})
        return PeriodFigures(
            period=period.label,
            submitted=self.count(submitted),
            channels={c: self.count(self._sum(months, f"channel:{c}")) for c in CHANNELS},
            digital_share=self.share(web, submitted),
            decided={d.value: self.count(self._sum(months, f"decided:{d}")) for d in Decision},
            time_to_decision=TimeToDecision(
                elapsed=self.distribution(months, "elapsed"), legal=self.distribution(months, "legal")
            ),
            within_legal_deadline=self.share(met, known),
            backlog=self.backlog(months[-1]),
            steps={step: self.distribution(months, f"step:{step}") for step in steps},
            satisfaction=self.satisfaction(months),
        )

    def count(self, n: int) -> Count:
        return Count(n=None, suppressed=True) if domain.suppressed(n, self.threshold) else Count(n=n)

    def share(self, part: int, whole: int) -> Share:
        if domain.suppressed(whole, self.threshold):
            return Share(n=None, suppressed=True)
        return Share(n=whole, share=domain.share(part, whole))

    def distribution(
        self, months: list[date], measure: str, *, extra: dict[int, int] | None = None
    ) -> Distribution:
        bins = domain.merge([*(self.data.bins.get((m, measure), {}) for m in months), extra or {}])
        total = (
            sum(self.data.sums.get((m, measure), 0.0) for m in months) if measure != "backlog_age" else None
        )
        return self._published(domain.distribution(bins, total_seconds=total))

    def _published(self, d: domain.Distribution) -> Distribution:
        if domain.suppressed(d.n, self.threshold):
            return Distribution(n=None, suppressed=True)
        return Distribution(
            n=d.n,
            p50_days=domain.in_days(d.p50),
            p90_days=domain.in_days(d.p90),
            mean_days=domain.in_days(d.mean),
        )

    def backlog(self, month: date) -> Backlog:
        """Open at the month's end (or now, for the month under way): the cases decided since, kept as
        bins when they were decided, plus the ones still open, read live."""
        end = min(domain.month_end(month), self.now)
        live: dict[int, int] = {}
        for since in self.data.open_since:
            if since < end:
                bin_ = domain.bin_of((end - since).total_seconds())
                live[bin_] = live.get(bin_, 0) + 1
        open_now = sum(live.values())
        return Backlog(
            open=self.count(self.data.counts.get((month, "open_at_end"), 0) + open_now),
            age=self.distribution([month], "backlog_age", extra=live),
        )

    def satisfaction(self, months: list[date]) -> Satisfaction:
        counts = {r: self._sum(months, f"rating:{r}") for r in RATINGS}
        n = sum(counts.values())
        if domain.suppressed(n, self.threshold):
            return Satisfaction(n=None, suppressed=True)
        total = sum(self.data.sums.get((m, "rating"), 0.0) for m in months)
        return Satisfaction(n=n, counts=counts, mean=round(total / n, 2) if n else None)

    def _sum(self, months: list[date], measure: str) -> int:
        return sum(self.data.counts.get((m, measure), 0) for m in months)
