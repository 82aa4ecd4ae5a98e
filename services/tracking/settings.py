from pydantic import AliasChoices, Field

from shared.settings import ServiceSettings


class TrackingSettings(ServiceSettings):
    port: int = Field(default=8003, validation_alias=AliasChoices("TRACKING_PORT"))
    # Lookups that miss (mistyped or unknown code) per client; past it, every lookup gets 429. A lookup
    # takes its miss before it looks (and gives it back if the code is found): see `shared.ratelimit`.
    miss_limit: str = Field(default="10/minute", validation_alias=AliasChoices("TRACKING_MISS_LIMIT"))
    lookup_limit: str = Field(default="120/minute", validation_alias=AliasChoices("TRACKING_LOOKUP_LIMIT"))
    # A case acknowledged a moment ago may not be folded yet: wait this long before answering 404.
    unknown_code_grace_seconds: float = Field(
        default=1.0, ge=0, le=10, validation_alias=AliasChoices("TRACKING_UNKNOWN_CODE_GRACE")
    )
    # How long `?min_version=` may wait for the projection to catch up.
    read_your_writes_seconds: float = Field(
        default=3.0, ge=0, le=30, validation_alias=AliasChoices("TRACKING_READ_WAIT")
    )
    # A lookup gives up on a database that stops answering after this long (beyond its wait): a 503.
    database_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, validation_alias=AliasChoices("TRACKING_DATABASE_TIMEOUT")
    )
    # intake's public API: the page's rating form is sent on to its `POST /v1/ratings` (the code in the body).
    intake_url: str = Field(default="http://127.0.0.1:8001", validation_alias=AliasChoices("INTAKE_URL"))
    # The page's reply form (`POST /suivi/reponse`) carries files on to intake: its body may be as large
    # as intake takes for a request with files (INTAKE_UPLOAD_MAX_BODY_BYTES); every other request keeps
    # the usual 64 KiB.
    reply_max_body_bytes: int = Field(
        default=96 * 1024 * 1024,
        ge=1024 * 1024,
        validation_alias=AliasChoices("TRACKING_REPLY_MAX_BODY_BYTES"),
    )
