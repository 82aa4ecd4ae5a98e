from typing import Annotated, Literal, Self

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import NoDecode

from services.notify.webhook_targets import parse_allowances
from shared.auth import AgentAuthSettings
from shared.settings import InternalApiSettings

DEVELOPMENT_LINK_SECRET = "development-notify-link-secret"  # noqa: S105 - refused in production


class NotifySettings(AgentAuthSettings, InternalApiSettings):
    port: int = Field(default=8005, validation_alias=AliasChoices("NOTIFY_PORT", "port"))
    # intake holds the citizens' addresses; notify asks for them on its internal API at send time.
    intake_internal_url: str = Field(
        default="http://127.0.0.1:8001",
        validation_alias=AliasChoices("INTAKE_INTERNAL_URL", "intake_internal_url"),
    )
    # Where links in the messages point: the public tracking page, and notify's own public address (the
    # link that stops a case's messages).
    tracking_public_url: str = Field(
        default="http://127.0.0.1:8003", validation_alias=AliasChoices("TRACKING_PUBLIC_URL")
    )
    notify_public_url: str = Field(
        default="http://127.0.0.1:8005", validation_alias=AliasChoices("NOTIFY_PUBLIC_URL")
    )
    # Signs the links that stop a case's messages; refused at its development value in production.
    link_secret: str = Field(
        default=DEVELOPMENT_LINK_SECRET,
        min_length=16,
        validation_alias=AliasChoices("NOTIFY_LINK_SECRET", "link_secret"),
    )

    # E-mail, over SMTP.
    smtp_host: str = Field(default="127.0.0.1", validation_alias=AliasChoices("SMTP_HOST", "smtp_host"))
    smtp_port: int = Field(default=2525, validation_alias=AliasChoices("SMTP_PORT", "smtp_port"))
    smtp_starttls: bool = Field(default=False, validation_alias=AliasChoices("SMTP_STARTTLS"))
    smtp_username: str | None = Field(default=None, validation_alias=AliasChoices("SMTP_USERNAME"))
    smtp_password: str | None = Field(default=None, validation_alias=AliasChoices("SMTP_PASSWORD"))
    smtp_timeout_seconds: float = Field(default=15, gt=0, validation_alias=AliasChoices("SMTP_TIMEOUT"))
    mail_from: str = Field(
        default="Mairie (Suivi) <suivi@mairie.example>", validation_alias=AliasChoices("MAIL_FROM")
    )

    # SMS: `file` writes each message under SMS_DIR (make run, tests); `http` posts to a provider.
    sms_provider: Literal["file", "http"] = Field(
        default="file", validation_alias=AliasChoices("SMS_PROVIDER")
    )
    sms_dir: str = Field(default=".data/sms", validation_alias=AliasChoices("SMS_DIR"))
    sms_http_url: str | None = Field(default=None, validation_alias=AliasChoices("SMS_HTTP_URL"))
    sms_http_token: str | None = Field(default=None, validation_alias=AliasChoices("SMS_HTTP_TOKEN"))
    sms_sender: str = Field(default="MAIRIE", max_length=11, validation_alias=AliasChoices("SMS_SENDER"))

    # Citizens' messages: how often the sender looks for work, how many at once, and the pauses between
    # tries of a temporary failure (seconds; like GOV.UK Notify, about 72 hours in all, then it fails).
    send_poll_seconds: float = Field(default=1.0, gt=0, validation_alias=AliasChoices("NOTIFY_POLL_SECONDS"))
    send_batch: int = Field(default=20, ge=1, le=500, validation_alias=AliasChoices("NOTIFY_SEND_BATCH"))
    send_retry_schedule: Annotated[tuple[float, ...], NoDecode] = Field(
        default=(30, 120, 600, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600, 24 * 3600),
        validation_alias=AliasChoices("NOTIFY_RETRY_SCHEDULE"),
    )
    # A message left "sending" longer than this (notify stopped mid-send) is sent again, same Message-ID.
    send_lease_seconds: float = Field(
        default=60, gt=0, validation_alias=AliasChoices("NOTIFY_SEND_LEASE_SECONDS")
    )

    # Webhooks: the pauses between tries (seconds; Svix's schedule, about 37 hours), then the subscription
    # is paused; the per-request timeout; which private targets may be allowed (`loopback` for make run).
    webhook_retry_schedule: Annotated[tuple[float, ...], NoDecode] = Field(
        default=(5, 300, 1800, 7200, 18000, 36000, 36000),
        validation_alias=AliasChoices("WEBHOOK_RETRY_SCHEDULE"),
    )
    webhook_timeout_seconds: float = Field(
        default=15, gt=0, le=60, validation_alias=AliasChoices("WEBHOOK_TIMEOUT")
    )
    webhook_allow_private: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias=AliasChoices("WEBHOOK_ALLOW_PRIVATE")
    )
    webhook_poll_seconds: float = Field(
        default=1.0, gt=0, validation_alias=AliasChoices("WEBHOOK_POLL_SECONDS")
    )

    @field_validator("send_retry_schedule", "webhook_retry_schedule", "webhook_allow_private", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        """`5,300,1800` (or a JSON list) from the environment."""
        if not isinstance(value, str):
            return value
        return [part.strip() for part in value.strip("[]").split(",") if part.strip()]

    @field_validator("send_retry_schedule", "webhook_retry_schedule")
    @classmethod
    def _positive_pauses(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(pause < 0 for pause in value):
            raise ValueError("a retry schedule is a non-empty list of pauses in seconds, e.g. 5,300,1800")
        return value

    @field_validator("webhook_allow_private")
    @classmethod
    def _known_allowances(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        parse_allowances(value)  # a typo stops start-up, naming the entry
        return value

    @model_validator(mode="after")
    def _refuse_development_values_in_production(self) -> Self:
        if self.environment != "production":
            return self
        if self.link_secret == DEVELOPMENT_LINK_SECRET:
            raise ValueError("ENVIRONMENT=production needs NOTIFY_LINK_SECRET set to a secret of its own")
        if self.webhook_allow_private:
            raise ValueError(
                "ENVIRONMENT=production refuses WEBHOOK_ALLOW_PRIVATE: webhooks to private addresses "
                "would let a subscriber reach the cluster's internal services"
            )
        return self
