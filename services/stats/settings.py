from typing import Literal

from pydantic import AliasChoices, Field

from shared.settings import ServiceSettings


class StatsSettings(ServiceSettings):
    port: int = Field(default=8004, validation_alias=AliasChoices("STATS_PORT"))
    # Figures over fewer cases than this are not published (JSON, CSV, dashboard alike).
    suppression_threshold: int = Field(
        default=5, ge=1, le=100, validation_alias=AliasChoices("STATS_SUPPRESSION_THRESHOLD")
    )
    # How often the forecasts tracking shows are recomputed and published, and on how many cases at least.
    forecast_seconds: float = Field(
        default=300, gt=0, validation_alias=AliasChoices("STATS_FORECAST_SECONDS")
    )
    forecast_min_cases: int = Field(
        default=10, ge=1, validation_alias=AliasChoices("STATS_FORECAST_MIN_CASES")
    )
    # The licence the open data is published under: Licence Ouverte 2.0 (Etalab) or the ODbL.
    open_data_licence: Literal["etalab-2.0", "ODbL-1.0"] = Field(
        default="etalab-2.0", validation_alias=AliasChoices("STATS_OPEN_DATA_LICENCE")
    )
