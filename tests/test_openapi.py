"""The OpenAPI documents say every answer each operation gives, errors with their `application/problem+json`
body: a schemathesis run with every check passes on intake, tracking, workflow, stats and notify, served by
uvicorn as in production."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from devtools import dev_issuer
from devtools.servers import NatsServer, PostgresServer, UvicornProcess
from tests.builders import make_case
from tests.conftest import Tokens

SERVICES = ("intake", "tracking", "workflow", "stats", "notify")
# What JSON Schema cannot say: a form's fields depend on the procedure named beside them, and an e-mail,
# a phone number or a tracking code is checked beyond its type. Schema-valid data may then be a 422 (or,
# for a well-formed code, a 404, or a 429 once the client missed too often).
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]

# The import's body is documented as a string (JSON Lines cannot be said in JSON Schema): a string with no
# JSON object on any line is the 400 that says so.
[[operations]]
include-path = "/v1/imports"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "409", "413", "422", "429"]
"""


@dataclass(frozen=True)
class Served:
    urls: dict[str, str]
    # A real case, so that the runs reach past "not found": its tracking code and its id.
    code: str
    case_id: str


def _open_case(urls: dict[str, str], agent: dict[str, str]) -> tuple[str, str]:
    case = httpx.post(f"{urls['intake']}/v1/cases", json=make_case()).json()
    for _ in range(100):
        if httpx.get(f"{urls['workflow']}/v1/cases/{case['case_id']}", headers=agent).status_code == 200:
            return case["tracking_code"], case["case_id"]
        time.sleep(0.1)
    raise AssertionError("workflow did not open the case")


@pytest.fixture(scope="module")
def served(
    pg_server: PostgresServer, issuer: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """Every service on its own port, on one database and one NATS server."""
    root = tmp_path_factory.mktemp("openapi")
    nats = NatsServer(store=root / "nats").start()
    procs = {
        name: UvicornProcess(f"services.{name}.app", env={}, log=root / f"{name}.log") for name in SERVICES
    }
    env = {
        **os.environ,
        "DATABASE_URL": pg_server.create_database("openapi"),
        "NATS_URL": nats.url,
        "ENVIRONMENT": "test",
        "INTAKE_INTERNAL_URL": procs["intake"].url,
        "INTAKE_URL": procs["intake"].url,  # tracking sends its forms and Open311 POSTs on to intake
        "OIDC_JWKS_FILE": str(issuer / dev_issuer.JWKS_FILE),
        "OIDC_ISSUER": dev_issuer.DEV_ISSUER,
    }
    try:
        for proc in procs.values():
            proc.env = env
            proc.start()  # one after the other: each applies its migrations
        urls = {name: proc.url for name, proc in procs.items()}
        yield Served(urls, *_open_case(urls, Tokens(issuer)()))
    finally:
        for proc in procs.values():
            proc.stop()
        nats.stop(kill=True)


def _schemathesis(url: str, config: Path, *headers: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        "15",
        "--seed",
        "6",
        "--workers",
        "1",
        "--generation-database",
        "none",
        *[option for header in headers for option in ("-H", header)],
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=150, check=False, cwd=config.parent
    )


@pytest.mark.parametrize("service", SERVICES)
def test_every_answer_is_documented(service: str, served: Served, tokens: Tokens, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    known = {
        "intake": "",
        "tracking": f'"path.code" = "{served.code}"',
        "workflow": f'"path.case_id" = "{served.case_id}"',
        "stats": '"path.code" = "permis-construire"',
        "notify": "",
    }
    config.write_text(f"[parameters]\n{known[service]}\n{CONFIG}", encoding="utf-8")
    # notify's API is for the city's admins; intake's admin routes (the import, the erasure) too: with an
    # admin's token schemathesis reaches past their 401 (on made-up case ids: it erases nothing real).
    role = {"workflow": "agent", "notify": "admin", "intake": "admin"}.get(service)
    headers = [f"Authorization: {tokens(role)['Authorization']}"] if role else []
    run = _schemathesis(served.urls[service], config, *headers)
    assert run.returncode == 0, run.stdout[-12000:] + run.stderr[-3000:]


def test_errors_are_problems_with_their_schema(served: Served) -> None:
    document = httpx.get(f"{served.urls['intake']}/openapi.json").json()
    answers = document["paths"]["/v1/replies"]["post"]["responses"]
    assert {"400", "404", "409", "413", "422", "429", "500", "503"} <= set(answers)
    for status, answer in answers.items():
        if status >= "400":
            assert list(answer["content"]) == ["application/problem+json"], status
            assert answer["content"]["application/problem+json"]["schema"]["$ref"].endswith("/Problem")
    assert "Retry-After" in answers["429"]["headers"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
