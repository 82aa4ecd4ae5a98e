"""A development identity provider: signs agent tokens on a laptop, where there is no ProConnect.

`make run` calls `ensure_keys(DATA / "dev-issuer")` and starts the workflow service with
`OIDC_JWKS_FILE=<that path>` and `OIDC_ISSUER=DEV_ISSUER`; `make token` calls `issue(...)`.
Nothing is served: the workflow reads the public keys from the file. Production refuses OIDC_JWKS_FILE,
so these keys can never open a real city's cases.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

# Names the issuer in the tokens and in OIDC_ISSUER; nothing listens there.
DEV_ISSUER = "http://127.0.0.1:8002/dev-issuer"
DEV_AUDIENCE = "suivi-workflow"
PRIVATE_KEY_FILE = "private.pem"
JWKS_FILE = "jwks.json"


class NoDevIssuerKeys(FileNotFoundError):
    """The development issuer has not been created in this folder yet."""


def ensure_keys(directory: Path) -> Path:
    """Creates an ES256 key pair in `directory` unless one is there; returns the path of its jwks.json."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_path = directory / PRIVATE_KEY_FILE
    if not private_path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write_atomically(private_path, pem, mode=0o600)
    jwks_path = directory / JWKS_FILE
    jwk = {**_public_jwk(_private_key(directory)), "use": "sig", "alg": "ES256"}
    jwks = json.dumps({"keys": [jwk]}, indent=2).encode()
    if not jwks_path.exists() or jwks_path.read_bytes() != jwks:
        _write_atomically(jwks_path, jwks, mode=0o644)
    return jwks_path


def claims(
    *,
    role: str,
    services: list[str],
    agent: str | None = None,
    minutes: int = 480,
    issuer: str = DEV_ISSUER,
    audience: str = DEV_AUDIENCE,
) -> dict[str, Any]:
    """The claims of an agent token, valid from now for `minutes`; tests change one to see it refused."""
    now = int(time.time())
    return {
        "iss": issuer,
        "aud": audience,
        "sub": agent or f"agent-{role}-{'-'.join(services) or 'all'}",
        "role": role,
        "services": services,
        "iat": now,
        "nbf": now,
        "exp": now + minutes * 60,
        "jti": uuid.uuid4().hex,
    }


def sign(directory: Path, payload: dict[str, Any]) -> str:
    """Signs `payload` with the development issuer's key (ES256, `kid` in the header)."""
    key = _private_key(directory)
    return jwt.encode(payload, key, algorithm="ES256", headers={"kid": _public_jwk(key)["kid"]})


def issue(
    directory: Path,
    *,
    role: str,
    services: list[str],
    agent: str | None = None,
    minutes: int = 480,
    issuer: str = DEV_ISSUER,
    audience: str = DEV_AUDIENCE,
) -> str:
    """A signed agent token. Raises `NoDevIssuerKeys` if `ensure_keys` never ran for `directory`."""
    payload = claims(
        role=role, services=services, agent=agent, minutes=minutes, issuer=issuer, audience=audience
    )
    return sign(directory, payload)


def _private_key(directory: Path) -> ec.EllipticCurvePrivateKey:
    path = directory / PRIVATE_KEY_FILE
    try:
        pem = path.read_bytes()
    except FileNotFoundError as exc:
        raise NoDevIssuerKeys(
            f"no development issuer keys in {directory}: run `make run` first, it creates the "
            "development issuer"
        ) from exc
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} is not an EC private key: delete {directory} and run `make run` again")
    return key


def _public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    public = {name: str(jwk[name]) for name in ("crv", "kty", "x", "y")}
    # RFC 7638 thumbprint: the same key always gets the same kid.
    canonical = json.dumps(public, separators=(",", ":"), sort_keys=True).encode()
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
    return {**public, "kid": kid}


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.fchmod(fd, mode)  # whatever the umask or an older temporary file said
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(temporary, path)
