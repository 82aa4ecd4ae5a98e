"""Who is acting: a city agent, proven by a bearer JWT from the city's identity provider.

The provider (ProConnect, the city's own, or `devtools/dev_issuer.py` on a laptop) signs tokens with an
asymmetric key it publishes as a JWKS, so a service only ever holds public keys. Claims: `sub` (the
agent), `role` (agent, supervisor or admin) and `services` (the codes of the services whose cases the
agent handles, the `service:` of the procedure files).

A service whose callers are agents wires it in three lines:
    class WorkflowSettings(AgentAuthSettings): ...
    app.state.token_verifier = TokenVerifier(settings)   # in create_app
    async def route(agent: CurrentAgent) -> ...:
A refused token is a `TokenRefused` (an `ApiError`, 401 with `WWW-Authenticate`). Whether an authenticated
agent may act is the caller's decision: it raises `ApiError("auth.forbidden_service", status=403, ...)`.
"""

from __future__ import annotations

import json
import logging
import string
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Self
from urllib.parse import urlparse

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import NoDecode
from starlette.concurrency import run_in_threadpool

from shared.http import ApiError
from shared.procedures import Role
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

AGENT_ROLES = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
# Asymmetric only: with HS* the published public key would become a secret anyone can sign with.
SUPPORTED_ALGORITHMS = (
    "ES256",
    "ES384",
    "ES512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "EdDSA",
)
REQUIRED_CLAIMS = ["sub", "role", "services", "exp", "iss", "aud"]
# PyJWKClient is synchronous: a slow provider holds one worker thread, never the event loop.
JWKS_TIMEOUT_SECONDS = 5
JWKS_CACHE_SECONDS = 300
# A token verified once is trusted again, by its exact text, until it expires or for this long at most
# (an agent's next requests skip the signature check; a key withdrawn from the JWKS stops being trusted
# within this time, as with the JWKS cache above), for up to VERIFIED_TOKENS_KEPT tokens.
VERIFIED_TOKEN_SECONDS = 60
VERIFIED_TOKENS_KEPT = 10_000


class Agent(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    role: Role
    services: frozenset[str]

    def can_see(self, service: str) -> bool:
        return self.role is Role.ADMIN or service in self.services


class AgentAuthSettings(ServiceSettings):
    """Settings of a service whose callers are city agents; its own settings class inherits this one."""

    oidc_issuer: str = Field(min_length=1, validation_alias=AliasChoices("OIDC_ISSUER"))
    oidc_audience: str = Field(
        default="suivi-workflow", min_length=1, validation_alias=AliasChoices("OIDC_AUDIENCE")
    )
    oidc_jwks_url: str | None = Field(default=None, validation_alias=AliasChoices("OIDC_JWKS_URL"))
    # The development issuer's public keys (`devtools/dev_issuer.py`); refused in production.
    oidc_jwks_file: Path | None = Field(default=None, validation_alias=AliasChoices("OIDC_JWKS_FILE"))
    # `ES256,RS256` or `["ES256", "RS256"]`.
    oidc_algorithms: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("ES256", "RS256"), validation_alias=AliasChoices("OIDC_ALGORITHMS")
    )
    oidc_leeway_seconds: int = Field(
        default=30, ge=0, le=300, validation_alias=AliasChoices("OIDC_LEEWAY_SECONDS")
    )

    @field_validator("oidc_jwks_url", "oidc_jwks_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return value or None

    @field_validator("oidc_algorithms", mode="before")
    @classmethod
    def _split_algorithms(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        if value.strip().startswith("["):
            return json.loads(value)
        return [part.strip() for part in value.split(",") if part.strip()]

    @field_validator("oidc_algorithms")
    @classmethod
    def _asymmetric_only(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        refused = [a for a in value if a not in SUPPORTED_ALGORITHMS]
        if refused or not value:
            raise ValueError(
                f"OIDC_ALGORITHMS refuses {', '.join(refused) or 'an empty list'}: give asymmetric "
                f"algorithms among {', '.join(SUPPORTED_ALGORITHMS)} (none and HS* are never accepted)"
            )
        return value

    @model_validator(mode="after")
    def _one_trusted_key_source(self) -> Self:
        if (self.oidc_jwks_url is None) == (self.oidc_jwks_file is None):
            raise ValueError(
                "set exactly one of OIDC_JWKS_URL (the identity provider's JWKS address, https) and "
                "OIDC_JWKS_FILE (the development issuer's jwks.json, made by `make run`)"
            )
        url_scheme = urlparse(self.oidc_jwks_url).scheme if self.oidc_jwks_url else None
        if url_scheme not in (None, "http", "https"):
            raise ValueError(f"OIDC_JWKS_URL must be an https:// address, not {self.oidc_jwks_url!r}")
        if self.environment != "production":
            return self
        if self.oidc_jwks_file is not None:
            raise ValueError(
                "ENVIRONMENT=production refuses OIDC_JWKS_FILE (the development issuer, whose private key "
                "sits on disk): set OIDC_JWKS_URL to the identity provider's https JWKS address instead"
            )
        if url_scheme != "https" or urlparse(self.oidc_issuer).scheme != "https":
            raise ValueError(
                "ENVIRONMENT=production needs OIDC_JWKS_URL and OIDC_ISSUER to be https:// addresses "
                "(keys fetched over plain http could be replaced on the way)"
            )
        return self


class TokenRefused(ApiError):
    """The bearer token cannot be trusted (RFC 6750 `invalid_token`): ask the agent to sign in again."""

    status = 401

    def __init__(self, key: str, *, description: str, **params: object) -> None:
        safe = "".join(c for c in description if c in string.printable and c not in '"\\\r\n\t')
        challenge = f'Bearer error="invalid_token", error_description="{safe}"'
        super().__init__(key, headers={"WWW-Authenticate": challenge})
        self.params = params


KeyLookup = Callable[[str], jwt.PyJWK]

# Most specific first: ExpiredSignatureError and the others are all InvalidTokenError.
_CLAIM_ERRORS: tuple[tuple[type[jwt.InvalidTokenError], str], ...] = (
    (jwt.ExpiredSignatureError, "auth.expired_token"),
    (jwt.ImmatureSignatureError, "auth.not_yet_valid"),
    (jwt.InvalidIssuerError, "auth.wrong_issuer"),
    (jwt.InvalidAudienceError, "auth.wrong_audience"),
    (jwt.MissingRequiredClaimError, "auth.missing_claim"),
)


class TokenVerifier:
    """Turns a bearer token into an `Agent`, or raises `TokenRefused` saying why."""

    def __init__(self, settings: AgentAuthSettings) -> None:
        """Reads OIDC_JWKS_FILE now (a bad file stops start-up); OIDC_JWKS_URL on first use, then cached."""
        if settings.oidc_jwks_file is not None:
            self._keys = _keys_from_file(settings.oidc_jwks_file)
        else:
            self._keys = _keys_from_url(str(settings.oidc_jwks_url))
        self.issuer, self.audience = settings.oidc_issuer, settings.oidc_audience
        self.algorithms, self.leeway = settings.oidc_algorithms, settings.oidc_leeway_seconds
        self._verified: dict[str, tuple[float, Agent]] = {}  # token -> (trusted until, agent)

    def known(self, token: str) -> Agent | None:
        """The agent of a token verified a moment ago, if it is still valid: no signature check."""
        found = self._verified.get(token)
        if found is None:
            return None
        if time.time() >= found[0]:
            self._verified.pop(token, None)
            return None
        return found[1]

    def verify(self, token: str) -> Agent:
        if (agent := self.known(token)) is not None:
            return agent
        claims = self._verified_claims(token, self._signing_key(token))
        agent = _agent_from(claims)
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._verified.clear()  # the agents' next requests verify their tokens again
        self._verified[token] = (min(float(claims["exp"]), time.time() + VERIFIED_TOKEN_SECONDS), agent)
        return agent

    def _signing_key(self, token: str) -> jwt.PyJWK:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise TokenRefused("auth.invalid_token", description="malformed token", reason=str(exc)) from exc
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            shown = str(algorithm)[:20]
            raise TokenRefused(
                "auth.refused_algorithm",
                description=f"algorithm {shown} refused",
                algorithm=shown,
                allowed=", ".join(self.algorithms),
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRefused("auth.unknown_key", description="no kid in the token header")
        try:
            return self._keys(kid)
        except (jwt.PyJWKClientConnectionError, jwt.PyJWKSetError) as exc:
            log.warning("the identity provider's JWKS cannot be fetched or has no usable key: %s", exc)
            raise ApiError("auth.issuer_unavailable", status=503, headers={"Retry-After": "5"}) from exc
        except LookupError as exc:
            raise TokenRefused("auth.unknown_key", description="signed by an unknown key") from exc

    def _verified_claims(self, token: str, key: jwt.PyJWK) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=list(self.algorithms),
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.InvalidTokenError as exc:
            key_name = next((k for t, k in _CLAIM_ERRORS if isinstance(exc, t)), "auth.invalid_token")
            params = {"reason": str(exc), "issuer": self.issuer, "audience": self.audience}
            if isinstance(exc, jwt.MissingRequiredClaimError):
                params["claim"] = exc.claim
            raise TokenRefused(key_name, description=str(exc), **params) from exc


def _agent_from(claims: dict[str, Any]) -> Agent:
    sub, role, services = claims["sub"], claims["role"], claims["services"]
    if not isinstance(role, str) or role not in {r.value for r in AGENT_ROLES}:
        raise TokenRefused(
            "auth.unknown_role",
            description="role is not an agent role",
            role=str(role)[:40],
            allowed=", ".join(AGENT_ROLES),
        )
    for claim, valid in (
        ("sub", isinstance(sub, str) and sub != ""),
        ("services", isinstance(services, list) and all(isinstance(s, str) and s for s in services)),
    ):
        if not valid:
            raise TokenRefused("auth.invalid_claim", description=f"malformed {claim} claim", claim=claim)
    return Agent(id=sub, role=Role(role), services=frozenset(services))


def _keys_from_file(path: Path) -> KeyLookup:
    try:
        keyset = jwt.PyJWKSet.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, jwt.PyJWTError) as exc:
        raise ValueError(
            f"OIDC_JWKS_FILE={path} is not a readable JWKS ({exc}); `make run` creates the development "
            "issuer's keys in .data/dev-issuer/"
        ) from exc
    signing = {k.key_id: k for k in keyset if k.key_id and k.public_key_use in (None, "sig")}
    return lambda kid: signing[kid]


def _keys_from_url(url: str) -> KeyLookup:
    client = jwt.PyJWKClient(url, lifespan=JWKS_CACHE_SECONDS, timeout=JWKS_TIMEOUT_SECONDS)

    def key_for(kid: str) -> jwt.PyJWK:
        try:
            return client.get_signing_key(kid)
        except (jwt.PyJWKClientConnectionError, jwt.PyJWKSetError):
            raise
        except jwt.PyJWKClientError as exc:
            log.info("no signing key %r in the identity provider's JWKS: %s", kid, exc)
            raise LookupError(kid) from exc

    return key_for


_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="AgentToken",
    description="A city agent's token from the identity provider (development: `make token`).",
)


async def current_agent(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Agent:
    """A token verified a moment ago is known at once; another is verified in a worker thread, where a
    JWKS fetch may block."""
    if credentials is None:
        raise ApiError("auth.missing_token", status=401, headers={"WWW-Authenticate": 'Bearer realm="suivi"'})
    verifier: TokenVerifier = request.app.state.token_verifier
    if (agent := verifier.known(credentials.credentials)) is not None:
        return agent
    return await run_in_threadpool(verifier.verify, credentials.credentials)


CurrentAgent = Annotated[Agent, Depends(current_agent)]
