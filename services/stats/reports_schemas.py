"""HTTP models of the street reports' figures: every figure says over how many reports (or answers) it
was computed, and whether it is withheld because that is too few to publish."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from services.stats.schemas import Count, Share


class Durations(BaseModel):
    """Durations in days, over `n` reports: the median and the 90th percentile, exact."""

    n: int | None = Field(description="how many reports; null when suppressed")
    suppressed: bool = False
    p50_days: float | None = None
    p90_days: float | None = None


class ReportFigures(BaseModel):
    received: Count = Field(description="reports submitted, in the month of submission")
    final: dict[str, Count] = Field(
        description="by final step code: reports entering it for the first time, in the month they did"
    )
    time_to_done: Durations = Field(
        description='from submission to the first "done" (outcome accepted), in the month of that "done"'
    )
    done_within_commitment: Share = Field(
        description="of the reports first done in the month, the share done on or before their commitment date"
    )
    confirmed_fixed: Share = Field(
        description="of the reporters' answers given in the month, the share saying it is really fixed"
    )


class OpenReports(BaseModel):
    """The reports open now (never reached a final step, or reopened), and how long ago they came in."""

    open: Count
    age: Durations


class ReportRow(BaseModel):
    month: str = Field(examples=["2026-03"])
    category: str
    district: str
    figures: ReportFigures


class Place(BaseModel):
    """A district, or a category, with its figures over the whole period and its reports open now."""

    code: str
    name: str
    figures: ReportFigures
    open_now: OpenReports


class FinalStep(BaseModel):
    code: str
    outcome: str
    label: str


class ReportMethod(BaseModel):
    reports: str
    done: str
    confirmed: str
    commitment: str
    reopened: str
    months: str
    percentiles: str
    open_now: str
    small_areas: str
    suppression_threshold: int
    suppression: str

    def texts(self) -> list[str]:
        """Every text of the method, in the order the page and the Data Package give them."""
        return [
            self.reports,
            self.done,
            self.confirmed,
            self.commitment,
            self.reopened,
            self.months,
            self.percentiles,
            self.open_now,
            self.small_areas,
            self.suppression,
        ]


class ReportSeries(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    procedure: str
    title: str
    from_: str = Field(alias="from", examples=["2026-01"])
    to: str = Field(examples=["2026-12"])
    category: str | None
    district: str | None
    commitment_days: int | None = Field(description="the city's commitment: days to act on a report")
    final_steps: list[FinalStep]
    method: ReportMethod
    total: ReportFigures = Field(description="the whole period, for the category and district asked")
    open_now: OpenReports = Field(description="now, whatever the period, for the category and district asked")
    districts: list[Place] = Field(description="each district over the whole period (the map's figures)")
    categories: list[Place] = Field(description="each category over the whole period")
    rows: list[ReportRow] = Field(description="category × district × month, where anything happened")
