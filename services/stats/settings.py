from pydantic import AliasChoices, Field

from shared.settings import ServiceSettings


class StatsSettings(ServiceSettings):
    port: int = Field(default=8004, validation_alias=AliasChoices("STATS_PORT"))
    # Figures over fewer cases than this are not published (JSON, CSV, dashboard alike).
    suppression_threshold: int = Field(
        default=5, ge=1, le=100, validation_alias=AliasChoices("STATS_SUPPRESSION_THRESHOLD")
    )
