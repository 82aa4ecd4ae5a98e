from pathlib import Path
from typing import Literal, Self

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, field_validator, model_validator

from shared.auth import AgentAuthSettings
from shared.objectstore import LocalFolder, S3Bucket, StoreConfig
from shared.settings import REPO_ROOT, InternalApiSettings, ServiceSettings

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
    # The form pages (`/demarches/...`) ask how the citizen applies (online, at the counter, on the phone),
    # for agents filling the form for a citizen. Only for a deployment that agents alone reach (the city's
    # network, the agents' host): on the public's, every form is `web`, whatever a form posts.
    counter_form: bool = Field(default=False, validation_alias=AliasChoices("INTAKE_COUNTER_FORM"))
    # Requests carrying files (`POST /v1/cases` and `POST /v1/replies` as multipart/form-data): every
    # file a procedure's form takes, at their largest, and the form. Each file is checked against its
    # field's own limits; this bounds the request as a whole.
    upload_max_body_bytes: int = Field(
        default=96 * 1024 * 1024,
        ge=1024 * 1024,
        validation_alias=AliasChoices("INTAKE_UPLOAD_MAX_BODY_BYTES"),
    )
    # Where citizens' files are kept: a local folder (`make run`), or any S3-compatible store.
    documents_store: Literal["file", "s3"] = Field(
        default="file", validation_alias=AliasChoices("DOCUMENTS_STORE")
    )
    documents_dir: Path = Field(
        default=REPO_ROOT / ".data" / "documents", validation_alias=AliasChoices("DOCUMENTS_DIR")
    )
    s3_endpoint: str | None = Field(default=None, validation_alias=AliasChoices("S3_ENDPOINT"))
    s3_bucket: str | None = Field(default=None, validation_alias=AliasChoices("S3_BUCKET"))
    s3_region: str = Field(default="us-east-1", validation_alias=AliasChoices("S3_REGION"))
    s3_access_key_id: str | None = Field(default=None, validation_alias=AliasChoices("S3_ACCESS_KEY_ID"))
    s3_secret_access_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("S3_SECRET_ACCESS_KEY")
    )
    # `endpoint/bucket/key` (most self-hosted stores) rather than `bucket.endpoint/key` (AWS's default).
    s3_path_style: bool = Field(default=True, validation_alias=AliasChoices("S3_PATH_STYLE"))
    # Replies whose tracking code misses (mistyped or unknown) per client; past it, every reply gets 429.
    reply_miss_limit: str = Field(
        default="10/minute", validation_alias=AliasChoices("INTAKE_REPLY_MISS_LIMIT")
    )
    # Admins' tokens (`POST /v1/imports`, erasures), checked like workflow's agents' tokens: OIDC_ISSUER and
    # OIDC_JWKS_URL (in development OIDC_JWKS_FILE); OIDC_AUDIENCE, OIDC_ALGORITHMS and
    # OIDC_LEEWAY_SECONDS as in `shared.auth`. None set: citizens' routes work, the import answers 503.
    oidc_issuer: str | None = Field(default=None, validation_alias=AliasChoices("OIDC_ISSUER"))
    oidc_jwks_url: str | None = Field(default=None, validation_alias=AliasChoices("OIDC_JWKS_URL"))
    oidc_jwks_file: Path | None = Field(default=None, validation_alias=AliasChoices("OIDC_JWKS_FILE"))
    # How a report's address becomes a point: the city's street list (offline; `make run`, tests) or the
    # national address API (production: GEOCODER=address-api, ADDRESS_API_URL, CITY_INSEE_CODE).
    geocoder: Literal["gazetteer", "address-api"] = Field(
        default="gazetteer", validation_alias=AliasChoices("GEOCODER")
    )
    gazetteer_file: Path = Field(
        default=REPO_ROOT / "procedures" / "streets.csv", validation_alias=AliasChoices("GAZETTEER_FILE")
    )
    address_api_url: str = Field(
        default="https://data.geopf.fr/geocodage/search", validation_alias=AliasChoices("ADDRESS_API_URL")
    )
    city_insee_code: str | None = Field(default=None, validation_alias=AliasChoices("CITY_INSEE_CODE"))
    # The keys of the 311 apps that may post reports (`POST /open311/v2/requests.json`), comma-separated;
    # none: every report through Open311 is refused (403). `make run` makes one for development.
    open311_api_keys: SecretStr = Field(
        default=SecretStr(""), validation_alias=AliasChoices("OPEN311_API_KEYS")
    )
    # How often intake erases the personal data of cases whose retention period ended (`erasure.py`).
    retention_sweep_seconds: float = Field(
        default=3600, gt=0, validation_alias=AliasChoices("INTAKE_RETENTION_SWEEP_SECONDS")
    )
    _agent_auth: AgentAuthSettings | None = PrivateAttr(default=None)

    @field_validator(*_AGENT_TOKEN_SWITCHES, "s3_endpoint", "s3_bucket", "s3_access_key_id", mode="before")
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
        if self.geocoder == "address-api" and not self.city_insee_code:
            raise ValueError(
                "GEOCODER=address-api needs CITY_INSEE_CODE (the city's INSEE code, e.g. 69123), so that an "
                "address is looked for in the city only"
            )
        return self

    @model_validator(mode="after")
    def _documents_store(self) -> Self:
        if self.documents_store == "file" and self.environment == "production":
            raise ValueError(
                "ENVIRONMENT=production keeps citizens' files in an object store: set DOCUMENTS_STORE=s3 "
                "with S3_BUCKET (and S3_ENDPOINT, S3_REGION, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY)"
            )
        if self.documents_store == "s3" and not self.s3_bucket:
            raise ValueError(
                "DOCUMENTS_STORE=s3 needs S3_BUCKET (and S3_ENDPOINT for a store other than AWS)"
            )
        if (self.s3_access_key_id is None) != (self.s3_secret_access_key is None):
            raise ValueError("set both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or neither")
        return self

    @property
    def documents_store_config(self) -> StoreConfig:
        """Where citizens' files are kept (`shared.objectstore`)."""
        if self.documents_store == "file":
            return LocalFolder(self.documents_dir)
        assert self.s3_bucket is not None, "checked at start-up"
        secret = self.s3_secret_access_key
        return S3Bucket(
            bucket=self.s3_bucket,
            region=self.s3_region,
            endpoint=self.s3_endpoint,
            access_key_id=self.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
            path_style=self.s3_path_style,
        )

    @property
    def open311_keys(self) -> list[str]:
        """The 311 apps' API keys (`OPEN311_API_KEYS`), each at least 16 characters (checked at start-up)."""
        return [k.strip() for k in self.open311_api_keys.get_secret_value().split(",") if k.strip()]

    @model_validator(mode="after")
    def _open311_keys_long_enough(self) -> Self:
        if short := [k for k in self.open311_keys if len(k) < 16]:
            raise ValueError(
                f"OPEN311_API_KEYS: {len(short)} key(s) shorter than 16 characters; give each 311 app a long "
                "random key (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(24))'`)"
            )
        return self

    @property
    def agent_auth(self) -> AgentAuthSettings | None:
        """How to check agents' tokens, or None when intake was given no identity provider."""
        return self._agent_auth
