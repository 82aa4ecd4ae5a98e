from pydantic import AliasChoices, Field

from shared.settings import InternalApiSettings


class IntakeSettings(InternalApiSettings):
    port: int = Field(default=8001, validation_alias=AliasChoices("INTAKE_PORT"))
    # Where citizens follow their case: the tracking service's public address.
    tracking_public_url: str = Field(
        default="http://127.0.0.1:8003", validation_alias=AliasChoices("TRACKING_PUBLIC_URL")
    )
    max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, validation_alias=AliasChoices("INTAKE_MAX_BODY_BYTES")
    )
    # Replies whose tracking code misses (mistyped or unknown) per client; past it, every reply gets 429.
    reply_miss_limit: str = Field(
        default="10/minute", validation_alias=AliasChoices("INTAKE_REPLY_MISS_LIMIT")
    )
