"""From stored aggregates to published figures, without I/O: months merged into periods, percentiles read
from the merged bins, the backlog of the months the fold has not sealed yet completed with the open cases
read live, and small figures suppressed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from services.stats import domain
from services.stats.domain import Decision, Sketch
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
    """What the database holds for one procedure (and district) over some months: its rows number with
    months, measures and bins, never with how many cases there were."""

    counts: dict[tuple[date, str], int] = field(default_factory=dict)
    sums: dict[tuple[date, str], float] = field(default_factory=dict)
    durations: dict[tuple[date, str], Sketch] = field(default_factory=dict)
    # The ages at a month's end (`backlog_age`) of the cases counted in its backlog (`open_at_end`).
    backlog_ages: dict[date, Sketch] = field(default_factory=dict)
    # For the months not sealed yet (`domain.live_end`): the open cases' ages then, read live.
    live: dict[date, Sketch] = field(default_factory=dict)
    # The last month the fold has sealed, and the running totals read at some months up to it.
    sealed: date | None = None
    to_date: dict[tuple[date, str], Sketch] = field(default_factory=dict)

    _merged: dict[tuple[tuple[date, ...], str], Sketch] = field(
        default_factory=dict, repr=False, compare=False
    )

    def merged(self, months: list[date], measure: str) -> Sketch:
        """The durations of the months together: from running totals for a long period, else month by month."""
        key = (tuple(months), measure)
        if key not in self._merged:
            self._merged[key] = self._merge(months, measure)
        return self._merged[key]

    def _merge(self, months: list[date], measure: str) -> Sketch:
        span = domain.running_span(months, sealed=self.sealed) if domain.is_running(measure) else None
        parts = []
        if span is not None:
            after, through = span
            total = self.to_date.get((through, measure), Sketch())
            parts.append(domain.difference(total, self.to_date.get((after, measure), Sketch())))
            months = [m for m in months if m > through]
        parts += [self.durations[(m, measure)] for m in months if (m, measure) in self.durations]
        return domain.merged(parts)

    def steps(self, months: list[date]) -> list[str]:
        """The steps cases left during the months."""
        read = [*((mo, m) for (mo, m) in self.durations if mo in months), *self.to_date]
        steps = {m for (_, m) in read if m.startswith("step:")}
        return sorted(m[5:] for m in steps if self.merged(months, m).bins)


@dataclass
class Period:
    label: str
    months: list[date]


def periods(months: list[date], period: str) -> list[Period]:
    grouped: dict[str, list[date]] = {}
    for month in months:
        grouped.setdefault(domain.period_of(month, period), []).append(month)
    return [Period(label, ms) for label, ms in grouped.items()]


class Suppressing:
    """Counts and shares as published: withheld (n null, suppressed) when over fewer than `threshold`
    cases, or street reports (`reports_figures.Publish`)."""

    threshold: int

    def count(self, n: int) -> Count:
        return Count(n=None, suppressed=True) if domain.suppressed(n, self.threshold) else Count(n=n)

    def share(self, part: int, whole: int) -> Share:
        if domain.suppressed(whole, self.threshold):
            return Share(n=None, suppressed=True)
        return Share(n=whole, share=domain.share(part, whole))


class Figures(Suppressing):
    """Builds the published figures of one period, suppressing those over fewer than `threshold` cases."""

    def __init__(self, data: Aggregates, *, threshold: int) -> None:
        self.data, self.threshold = data, threshold

    def period(self, period: Period) -> PeriodFigures:
        months = period.months
        submitted = self._sum(months, "submitted")
        web = self._sum(months, "channel:web")
        known, met = self._sum(months, "deadline:known"), self._sum(months, "deadline:met")
        steps = self.data.steps(months)
        return PeriodFigures(
            period=period.label,
            submitted=self.count(submitted),
            channels={c: self.count(self._sum(months, f"channel:{c}")) for c in CHANNELS},
            digital_share=self.share(web, submitted),
            decided={d.value: self.count(self._sum(months, f"decided:{d}")) for d in Decision},
            time_to_decision=TimeToDecision(
                elapsed=self.distribution(period, "elapsed"), legal=self.distribution(period, "legal")
            ),
            within_legal_deadline=self.share(met, known),
            backlog=self.backlog(months[-1]),
            steps={step: self.distribution(period, f"step:{step}") for step in steps},
            satisfaction=self.satisfaction(months),
        )

    def distribution(self, period: Period, measure: str) -> Distribution:
        total = sum(self.data.sums.get((m, measure), 0.0) for m in period.months)
        sketch = self.data.merged(period.months, measure)
        return self._published(domain.distribution(sketch, total_seconds=total))

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
        """Open at the month's end (or now, for the month under way): the cases the fold counted in the
        month's backlog, and the open ones read live while the fold has not seen the month end."""
        live = self.data.live.get(month, Sketch())
        ages = domain.merged([self.data.backlog_ages.get(month, Sketch()), live])
        return Backlog(
            open=self.count(self.data.counts.get((month, "open_at_end"), 0) + live.n),
            age=self._published(domain.distribution(ages)),
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
