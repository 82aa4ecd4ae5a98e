"""HTTP models of stats: every figure says over how many cases it was computed, and whether it is withheld
because that is too few to publish."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Count(BaseModel):
    n: int | None = Field(description="how many cases; null when suppressed")
    suppressed: bool = False


class Distribution(BaseModel):
    """Durations in days, over `n` cases."""

    n: int | None
    suppressed: bool = False
    p50_days: float | None = None
    p90_days: float | None = None
    mean_days: float | None = None


class Share(BaseModel):
    n: int | None = Field(description="the cases the share is of")
    suppressed: bool = False
    share: float | None = Field(default=None, ge=0, le=1)


class Satisfaction(BaseModel):
    n: int | None
    suppressed: bool = False
    counts: dict[str, int] | None = Field(default=None, description="ratings 1 to 5: how many of each")
    mean: float | None = None


class Backlog(BaseModel):
    """The cases still open at the end of the period, and how old they were then."""

    open: Count
    age: Distribution


class TimeToDecision(BaseModel):
    elapsed: Distribution = Field(description="from submission to decision, calendar days")
    legal: Distribution = Field(description="the same, less the time the case waited for the citizen")


class PeriodFigures(BaseModel):
    period: str = Field(examples=["2026-03", "2026-Q1", "2026"])
    submitted: Count
    channels: dict[str, Count]
    digital_share: Share = Field(description="share of the submissions made online (channel web)")
    decided: dict[str, Count] = Field(
        description="accepted, rejected, tacit-acceptance, tacit-rejection, closed (withdrawn or closed)"
    )
    time_to_decision: TimeToDecision
    within_legal_deadline: Share
    backlog: Backlog
    steps: dict[str, Distribution] = Field(description="time spent in each step, by the step's code")
    satisfaction: Satisfaction


class Method(BaseModel):
    clocks: dict[str, str]
    percentiles: str
    months: str
    backlog: str
    suppression_threshold: int
    suppression: str

    def texts(self) -> list[str]:
        """Every text of the method, in the order the dashboard and the Data Package give them."""
        return [
            self.clocks["elapsed"],
            self.clocks["legal"],
            self.percentiles,
            self.months,
            self.backlog,
            self.suppression,
        ]


class ProcedureSeries(BaseModel):
    procedure: str
    title: str
    district: str | None
    period: str
    legal_deadline: dict[str, int] | None = Field(description="months and days, as the law says")
    method: Method
    series: list[PeriodFigures]


class ProcedureSummary(BaseModel):
    procedure: str
    title: str
    legal_deadline: dict[str, int] | None = Field(description="months and days, as the law says")
    last_12_months: PeriodFigures
    latest_month: PeriodFigures


class ProcedureList(BaseModel):
    method: Method
    procedures: list[ProcedureSummary]


class OpenDataFile(BaseModel):
    name: str
    url: str
    title: str
    description: str
    rows: int


class OpenDataIndex(BaseModel):
    datapackage: str = Field(description="the Frictionless Data Package describing every file")
    licence: str
    files: list[OpenDataFile]
