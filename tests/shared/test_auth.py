"""Agents prove who they are with a bearer token from the city's identity provider; a token that cannot be
trusted is refused with a message in the agent's language, and production refuses development keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from jwt.algorithms import RSAAlgorithm
from pydantic import ValidationError

from devtools import dev_issuer
from shared.auth import VERIFIED_TOKEN_SECONDS, Agent, AgentAuthSettings, CurrentAgent, TokenVerifier
from shared.http import ApiError, install_error_handlers
from shared.procedures import Role
from shared.settings import REPO_ROOT

PRODUCTION = {
    "environment": "production",
    "database_url": "postgresql://db.ville.example/suivi",
    "nats_url": "nats://nats.ville.example:4222",
    "stream_replicas": 3,
    "internal_token": "a-real-secret-of-the-city-0123456789",
}


@dataclass
class Issuer:
    """The development issuer's keys, plus an RSA key published beside them in the same JWKS."""

    directory: Path
    jwks: Path
    rsa_key: rsa.RSAPrivateKey

    def token(self, **changes: Any) -> str:
        return dev_issuer.sign(self.directory, self.claims(**changes))

    def claims(self, **changes: Any) -> dict[str, Any]:
        base = dev_issuer.claims(role="agent", services=["urbanisme"], agent="agent-42")
        return {k: v for k, v in {**base, **changes}.items() if v is not _DROP}

    @property
    def kid(self) -> str:
        return str(jwt.get_unverified_header(self.token())["kid"])


_DROP = object()


@pytest.fixture
def issuer(tmp_path: Path) -> Issuer:
    directory = tmp_path / "dev-issuer"
    jwks_path = dev_issuer.ensure_keys(directory)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_jwk = {**RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True), "kid": "rsa-1", "use": "sig"}
    both = tmp_path / "jwks-ec-and-rsa.json"
    keys = json.loads(jwks_path.read_text())["keys"]
    both.write_text(json.dumps({"keys": [*keys, rsa_jwk]}))
    return Issuer(directory=directory, jwks=both, rsa_key=rsa_key)


def auth_settings(**overrides: Any) -> AgentAuthSettings:
    return AgentAuthSettings(**{"environment": "test", "oidc_issuer": dev_issuer.DEV_ISSUER, **overrides})


@pytest.fixture
async def client(issuer: Issuer) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_error_handlers(app)
    app.state.token_verifier = TokenVerifier(auth_settings(oidc_jwks_file=issuer.jwks))

    @app.get("/whoami")
    def whoami(agent: CurrentAgent) -> Agent:
        return agent

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_an_agent_with_a_token_from_the_city_is_let_in(
    client: httpx.AsyncClient, issuer: Issuer
) -> None:
    response = await client.get("/whoami", headers=bearer(issuer.token(services=["urbanisme", "voirie"])))

    assert response.status_code == 200, response.text
    agent = response.json()
    assert (agent["id"], agent["role"], sorted(agent["services"])) == (
        "agent-42",
        "agent",
        ["urbanisme", "voirie"],
    )


async def test_an_rs256_token_is_verified_with_the_rsa_key_it_names(
    client: httpx.AsyncClient, issuer: Issuer
) -> None:
    token = jwt.encode(
        issuer.claims(role="supervisor"), issuer.rsa_key, algorithm="RS256", headers={"kid": "rsa-1"}
    )

    response = await client.get("/whoami", headers=bearer(token))

    assert response.status_code == 200, response.text
    assert response.json()["role"] == "supervisor"


async def test_without_a_token_the_agent_is_told_to_sign_in(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Basic YWdlbnQ6c2VjcmV0"}, {"Authorization": "Bearer"}):
        response = await client.get("/whoami", headers=headers)

        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["type"] == "auth.missing_token"
        assert response.json()["detail"].startswith("Connectez-vous : ce service demande un jeton d'agent")


def _hs256_with_public_key(issuer: Issuer) -> str:
    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer.kid}).encode())
    payload = b64(json.dumps(issuer.claims()).encode())
    secret = issuer.jwks.read_bytes()
    signature = b64(hmac.new(secret, header + b"." + payload, hashlib.sha256).digest())
    return (header + b"." + payload + b"." + signature).decode()


def _signed_by_another_issuer(issuer: Issuer) -> str:
    other = issuer.directory.parent / "other-issuer"
    dev_issuer.ensure_keys(other)
    return dev_issuer.sign(other, issuer.claims())


def _another_key_claiming_our_kid(issuer: Issuer) -> str:
    impostor = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(issuer.claims(), impostor, algorithm="ES256", headers={"kid": issuer.kid})


def _rs256_naming_the_ec_key(issuer: Issuer) -> str:
    return jwt.encode(issuer.claims(), issuer.rsa_key, algorithm="RS256", headers={"kid": issuer.kid})


REFUSED: list[tuple[str, Callable[[Issuer], str], str]] = [
    ("wrong issuer", lambda i: i.token(iss="https://idp.autre-ville.example"), "auth.wrong_issuer"),
    ("wrong audience", lambda i: i.token(aud="suivi-intake"), "auth.wrong_audience"),
    ("expired", lambda i: i.token(exp=int(time.time()) - 300), "auth.expired_token"),
    ("not yet valid", lambda i: i.token(nbf=int(time.time()) + 3600), "auth.not_yet_valid"),
    ("issued in the future", lambda i: i.token(iat=int(time.time()) + 3600), "auth.not_yet_valid"),
    ("unknown kid", _signed_by_another_issuer, "auth.unknown_key"),
    ("no kid", lambda i: jwt.encode(i.claims(), i.rsa_key, algorithm="RS256"), "auth.unknown_key"),
    ("another key, our kid", _another_key_claiming_our_kid, "auth.invalid_token"),
    ("RS256 naming the EC key", _rs256_naming_the_ec_key, "auth.invalid_token"),
    (
        "alg none",
        lambda i: jwt.encode(i.claims(), "", algorithm="none", headers={"kid": i.kid}),
        "auth.refused_algorithm",
    ),
    ("HS256 keyed with the public key", _hs256_with_public_key, "auth.refused_algorithm"),
    ("not a JWT", lambda i: "not.a.jwt", "auth.invalid_token"),
    ("role citizen", lambda i: i.token(role="citizen"), "auth.unknown_role"),
    ("unknown role", lambda i: i.token(role="superuser"), "auth.unknown_role"),
    ("role not a string", lambda i: i.token(role=["admin"]), "auth.unknown_role"),
    ("no services claim", lambda i: i.token(services=_DROP), "auth.missing_claim"),
    ("no sub claim", lambda i: i.token(sub=_DROP), "auth.missing_claim"),
    ("services not a list", lambda i: i.token(services="urbanisme"), "auth.invalid_claim"),
    ("empty sub", lambda i: i.token(sub=""), "auth.invalid_claim"),
]


@pytest.mark.parametrize(("case", "make_token", "key"), REFUSED, ids=[case for case, _, _ in REFUSED])
async def test_a_token_that_cannot_be_trusted_is_refused_in_the_agents_language(
    client: httpx.AsyncClient, issuer: Issuer, case: str, make_token: Callable[[Issuer], str], key: str
) -> None:
    token = make_token(issuer)
    details = {}
    for lang in ("fr", "en"):
        response = await client.get("/whoami", headers={**bearer(token), "Accept-Language": lang})

        assert response.status_code == 401, f"{case}: {response.text}"
        assert response.json()["type"] == key, case
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith('Bearer error="invalid_token", error_description="'), challenge
        details[lang] = response.json()["detail"]
    assert "jeton" in details["fr"], details
    assert "token" in details["en"], details
    assert "{" not in details["fr"] + details["en"], details


async def test_a_token_from_the_make_token_command_is_accepted(issuer: Issuer) -> None:
    command = ["--role", "supervisor", "--service", "urbanisme,voirie", "--data-dir", str(issuer.directory)]
    result = subprocess.run(
        [sys.executable, "-m", "devtools.token", *command],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )

    verifier = TokenVerifier(auth_settings(oidc_jwks_file=issuer.jwks))
    agent = verifier.verify(result.stdout.strip())
    assert result.stdout.count("\n") == 1
    assert agent == Agent(
        id="agent-supervisor-urbanisme-voirie",
        role=Role.SUPERVISOR,
        services=frozenset({"urbanisme", "voirie"}),
    )


def test_make_token_before_make_run_says_what_to_do(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devtools.token", "--service", "urbanisme", "--data-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert "run `make run` first" in result.stderr


def test_the_development_keys_are_made_once_and_the_private_key_stays_private(tmp_path: Path) -> None:
    first = dev_issuer.ensure_keys(tmp_path / "dev-issuer")
    content = first.read_text()

    assert dev_issuer.ensure_keys(tmp_path / "dev-issuer").read_text() == content
    assert (tmp_path / "dev-issuer" / "private.pem").stat().st_mode & 0o777 == 0o600
    assert '"d"' not in content


def test_an_agent_sees_the_cases_of_its_services_and_an_admin_sees_all() -> None:
    agent = Agent(id="a", role=Role.AGENT, services=frozenset({"urbanisme"}))
    admin = Agent(id="b", role=Role.ADMIN, services=frozenset())

    assert agent.can_see("urbanisme")
    assert not agent.can_see("voirie")
    assert admin.can_see("voirie")


@pytest.fixture
def jwks_server(issuer: Issuer) -> Iterator[str]:
    body = issuer.jwks.read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks"
    server.shutdown()
    server.server_close()


def test_keys_are_fetched_from_the_identity_providers_jwks_url(issuer: Issuer, jwks_server: str) -> None:
    verifier = TokenVerifier(auth_settings(oidc_jwks_url=jwks_server))

    assert verifier.verify(issuer.token()).id == "agent-42"
    with pytest.raises(ApiError) as refused:
        verifier.verify(_signed_by_another_issuer(issuer))
    assert (refused.value.status, refused.value.key) == (401, "auth.unknown_key")


def test_an_unreachable_identity_provider_is_a_503_not_a_refusal(issuer: Issuer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    verifier = TokenVerifier(auth_settings(oidc_jwks_url=f"http://127.0.0.1:{port}/jwks"))

    with pytest.raises(ApiError) as unavailable:
        verifier.verify(issuer.token())
    assert (unavailable.value.status, unavailable.value.key) == (503, "auth.issuer_unavailable")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({**PRODUCTION, "oidc_jwks_file": ".data/dev-issuer/jwks.json"}, "refuses OIDC_JWKS_FILE"),
        ({**PRODUCTION, "oidc_jwks_url": "http://idp.ville.example/jwks"}, "https"),
        (
            {**PRODUCTION, "oidc_jwks_url": "https://idp.ville.example/jwks", "oidc_issuer": "http://idp"},
            "https",
        ),
        ({}, "exactly one of OIDC_JWKS_URL"),
        ({"oidc_jwks_url": "https://idp.example/jwks", "oidc_jwks_file": "jwks.json"}, "exactly one"),
        ({"oidc_jwks_url": "file:///etc/passwd"}, "https://"),
        ({"oidc_jwks_url": "https://idp.example/jwks", "oidc_algorithms": "ES256,HS256"}, "refuses HS256"),
        ({"oidc_jwks_url": "https://idp.example/jwks", "oidc_algorithms": "none"}, "refuses none"),
    ],
)
def test_settings_refuse_keys_that_could_be_forged(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        auth_settings(**settings)


def test_production_settings_take_the_providers_https_jwks_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "ENVIRONMENT": "production",
        "DATABASE_URL": PRODUCTION["database_url"],
        "NATS_URL": PRODUCTION["nats_url"],
        "STREAM_REPLICAS": "3",
        "INTERNAL_API_TOKEN": PRODUCTION["internal_token"],
        "OIDC_ISSUER": "https://proconnect.gouv.fr/api/v2",
        "OIDC_JWKS_URL": "https://proconnect.gouv.fr/api/v2/jwks",
        "OIDC_ALGORITHMS": "ES256, RS256",
        "OIDC_LEEWAY_SECONDS": "10",
    }.items():
        monkeypatch.setenv(name, str(value))

    settings = AgentAuthSettings()

    assert settings.oidc_algorithms == ("ES256", "RS256")
    assert settings.oidc_audience == "suivi-workflow"
    assert settings.oidc_leeway_seconds == 10
    assert settings.oidc_jwks_file is None


def test_production_refuses_the_development_internal_token() -> None:
    from pydantic import ValidationError

    from shared.settings import InternalApiSettings

    with pytest.raises(ValidationError, match="INTERNAL_API_TOKEN"):
        InternalApiSettings(**{**PRODUCTION, "internal_token": "development-internal-token"})
    assert InternalApiSettings(**PRODUCTION).internal_token == PRODUCTION["internal_token"]


def test_a_verified_token_is_trusted_again_until_it_expires_and_no_longer(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = TokenVerifier(auth_settings(oidc_jwks_file=issuer.jwks, oidc_leeway_seconds=0))
    now = time.time()
    token = issuer.token(exp=int(now) + 30)
    assert verifier.verify(token).id == "agent-42"
    assert verifier.known(token) is not None  # the next request skips the signature check
    assert verifier.known(issuer.token(sub="agent-43")) is None  # another token is verified on its own

    monkeypatch.setattr(time, "time", lambda: now + 31)
    assert verifier.known(token) is None  # expired: `verify` checks it again (and PyJWT refuses it)


def test_a_verified_token_is_checked_again_after_a_minute_at_most(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = TokenVerifier(auth_settings(oidc_jwks_file=issuer.jwks))
    now = time.time()
    token = issuer.token(exp=int(now) + 3600)
    verifier.verify(token)
    monkeypatch.setattr(time, "time", lambda: now + VERIFIED_TOKEN_SECONDS + 1)
    assert verifier.known(token) is None
