"""Settings every service has: where PostgreSQL and NATS are, and how to behave.

Each service subclasses `ServiceSettings` in its own `settings.py`; values come from environment
variables and are validated at start-up, so a bad value stops the service with a message naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROCEDURES_DIR = REPO_ROOT / "procedures"
LOCAL_DATABASE_URL = "postgresql://postgres@127.0.0.1:25432/suivi"
LOCAL_NATS_URL = "nats://127.0.0.1:24222"
DEVELOPMENT_INTERNAL_TOKEN = "development-internal-token"  # noqa: S105 - refused in production


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = Field(
        default=LOCAL_DATABASE_URL, validation_alias=AliasChoices("DATABASE_URL", "database_url")
    )
    nats_url: str = Field(default=LOCAL_NATS_URL, validation_alias=AliasChoices("NATS_URL", "nats_url"))
    procedures_dir: Path = Field(
        default=DEFAULT_PROCEDURES_DIR, validation_alias=AliasChoices("PROCEDURES_DIR", "procedures_dir")
    )
    # 3 in production (a NATS cluster); 1 on a laptop with one nats-server.
    stream_replicas: int = Field(default=1, ge=1, le=5, validation_alias=AliasChoices("STREAM_REPLICAS"))
    db_pool_max: int = Field(default=10, ge=1, validation_alias=AliasChoices("DB_POOL_MAX"))
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("LOG_LEVEL"))
    # Readers of the stream (shared/bus.py PullConsumer). Tests shorten these; the defaults suit production.
    consumer_ack_wait_seconds: float = Field(
        default=30, gt=0, validation_alias=AliasChoices("CONSUMER_ACK_WAIT_SECONDS")
    )
    consumer_retry_max_seconds: float = Field(
        default=30, gt=0, validation_alias=AliasChoices("CONSUMER_RETRY_MAX_SECONDS")
    )
    consumer_poison_attempts: int = Field(
        default=3, ge=1, validation_alias=AliasChoices("CONSUMER_POISON_ATTEMPTS")
    )
    dead_letter_replay_poll_seconds: float = Field(
        default=2, gt=0, validation_alias=AliasChoices("DEAD_LETTER_REPLAY_POLL_SECONDS")
    )

    @model_validator(mode="after")
    def _refuse_local_defaults_in_production(self) -> Self:
        if self.environment != "production":
            return self
        if self.database_url == LOCAL_DATABASE_URL or self.nats_url == LOCAL_NATS_URL:
            raise ValueError(
                "ENVIRONMENT=production needs DATABASE_URL and NATS_URL set to the real servers, "
                "not the local development defaults"
            )
        if self.stream_replicas < 3:
            raise ValueError("ENVIRONMENT=production needs STREAM_REPLICAS=3 (or more) for the CASES stream")
        return self


class InternalApiSettings(ServiceSettings):
    """For services that call, or answer, another Suivi service's internal API."""

    # Services call each other's internal APIs (e.g. workflow asks intake for an applicant) with this token.
    internal_token: str = Field(
        default=DEVELOPMENT_INTERNAL_TOKEN,
        min_length=16,
        validation_alias=AliasChoices("INTERNAL_API_TOKEN", "internal_token"),
    )

    @model_validator(mode="after")
    def _refuse_the_development_token_in_production(self) -> Self:
        if self.environment == "production" and self.internal_token == DEVELOPMENT_INTERNAL_TOKEN:
            raise ValueError("ENVIRONMENT=production needs INTERNAL_API_TOKEN set to a secret of its own")
        return self
