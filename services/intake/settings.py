from pathlib import Path
from typing import Self

from pydantic import AliasChoices, Field, PrivateAttr, field_validator, model_validator

from shared.auth import AgentAuthSettings
from shared.settings import InternalApiSettings, ServiceSettings

# The switches of agents' tokens: set one, and intake checks them as workflow does (`shared.auth`).
_AGENT_TOKEN_SWITCHES = ("oidc_issuer", "oidc_jwks_url", "oidc_jwks_file")


class IntakeSettings(InternalApiSettings):
    port: int = Field(default=8001, validation_alias=AliasChoices("INTAKE_PORT"))
    # Where citizens follow their case: the tracking service's public address.
    tracking_public_url: str = Field(
        default="http://127.0.0.1:8003", validation_alias=AliasChoices("TRACKING_PUBLIC_URL")
    )
    max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, validation_alias=AliasChoices("INTAKE_MAX_BODY_BYTES")
    )
    # `POST /v1/imports` takes a whole file in one request: a few thousand past cases. Bigger files go
    # through `python -m services.intake.imports FILE` (the 413 says so).
    import_max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=64 * 1024, validation_alias=AliasChoices("INTAKE_IMPORT_MAX_BODY_BYTES")
    )
    # Replies whose tracking code misses (mistyped or unknown) per client; past it, every reply gets 429.
    reply_miss_limit: str = Field(
        default="10/minute", validation_alias=AliasChoices("INTAKE_REPLY_MISS_LIMIT")
    )
    # Admins' tokens (`POST /v1/imports`), checked like workflow's agents' tokens: OIDC_ISSUER and
    # OIDC_JWKS_URL (in development OIDC_JWKS_FILE); OIDC_AUDIENCE, OIDC_ALGORITHMS and
    # OIDC_LEEWAY_SECONDS as in `shared.auth`. None set: citizens' routes work, the import answers 503.
    oidc_issuer: str | None = Field(default=None, validation_alias=AliasChoices("OIDC_ISSUER"))
    oidc_jwks_url: str | None = Field(default=None, validation_alias=AliasChoices("OIDC_JWKS_URL"))
    oidc_jwks_file: Path | None = Field(default=None, validation_alias=AliasChoices("OIDC_JWKS_FILE"))
    _agent_auth: AgentAuthSettings | None = PrivateAttr(default=None)

    @field_validator(*_AGENT_TOKEN_SWITCHES, mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return value or None

    @model_validator(mode="after")
    def _agent_tokens(self) -> Self:
        """Half a configuration stops start-up with `shared.auth`'s own message, as workflow's would."""
        given = {name: value for name in _AGENT_TOKEN_SWITCHES if (value := getattr(self, name)) is not None}
        if given:
            common = {name: getattr(self, name) for name in ServiceSettings.model_fields}
            self._agent_auth = AgentAuthSettings(**common, **given)
        return self

    @property
    def agent_auth(self) -> AgentAuthSettings | None:
        """How to check agents' tokens, or None when intake was given no identity provider."""
        return self._agent_auth
