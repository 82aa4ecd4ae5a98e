"""The five services in process, wired as deployed, for the security tests: one PostgreSQL database and
one NATS server per test module, a real SMTP server for notify's e-mails and the file sink for its SMS;
workflow and notify reach intake's internal API, workflow reaches notify's, tracking sends its forms on to
intake. Each test module gets its own stack (module scope): its scenario is built once and then read."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from devtools import dev_issuer
from devtools.servers import NatsServer, PostgresServer, SmtpServer
from services.intake.app import create_app as create_intake
from services.notify.app import create_app as create_notify
from services.stats.app import create_app as create_stats
from services.tracking.app import create_app as create_tracking
from tests.builders import make_case
from tests.conftest import (
    Env,
    Tokens,
    _client,
    intake_settings,
    stats_settings,
    tracking_settings,
    workflow_app,
)
from tests.notify.conftest import notify_settings
from tests.waiting import eventually

SERVICES = ("intake", "workflow", "tracking", "stats", "notify")
OPEN311_KEY = "security-test-311-app-key-0123"
SMS_PROVIDER_TOKEN = "security-test-sms-provider-token"
_modules = iter(range(1, 1_000))


@dataclass
class Stack:
    env: Env
    apps: dict[str, FastAPI]
    clients: dict[str, httpx.AsyncClient]
    smtp: SmtpServer
    sms_dir: Path

    def __getitem__(self, service: str) -> httpx.AsyncClient:
        return self.clients[service]

    @property
    def internal(self) -> dict[str, str]:
        """The internal API's token, as the services send it to each other."""
        return {"Authorization": f"Bearer {self.apps['intake'].state.settings.internal_token}"}


@pytest.fixture(scope="module")
def module_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(store=tmp_path_factory.mktemp("security-nats")).start()
    yield server
    server.stop(kill=True)


@pytest.fixture(scope="module")
def module_smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    server = SmtpServer(maildir=tmp_path_factory.mktemp("security-smtp") / "mail").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def module_env(pg_server: PostgresServer, module_nats: NatsServer) -> Env:
    url = pg_server.create_database(f"security_{os.getpid()}_{next(_modules)}")
    return Env(database_url=url, nats_url=module_nats.url, pg=pg_server, nats=module_nats)


@asynccontextmanager
async def _serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(app):
        yield client


def _in_process(client: httpx.AsyncClient, base_url: str) -> httpx.AsyncClient:
    """An HTTP client whose requests go to `client`'s ASGI app, as a service calls another one."""
    return httpx.AsyncClient(transport=client._transport, base_url=base_url, timeout=10)


def _apps(env: Env, issuer: Path, smtp: SmtpServer, sms_dir: Path) -> dict[str, FastAPI]:
    agent_tokens: dict[str, Any] = {
        "oidc_issuer": dev_issuer.DEV_ISSUER,
        "oidc_jwks_file": issuer / dev_issuer.JWKS_FILE,
    }
    notify = notify_settings(
        env, issuer, smtp_port=smtp.port, sms_dir=str(sms_dir), sms_http_token=SMS_PROVIDER_TOKEN
    )
    return {
        "intake": create_intake(intake_settings(env, open311_api_keys=OPEN311_KEY, **agent_tokens)),
        "notify": create_notify(notify),
        "workflow": workflow_app(
            env, issuer, intake_internal_url="http://intake", notify_internal_url="http://notify"
        ),
        "tracking": create_tracking(tracking_settings(env)),
        "stats": create_stats(stats_settings(env)),
    }


@pytest.fixture(scope="module")
async def stack(
    module_env: Env, issuer: Path, module_smtp: SmtpServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    sms_dir = tmp_path_factory.mktemp("security-sms")
    apps = _apps(module_env, issuer, module_smtp, sms_dir)
    async with AsyncExitStack() as started:
        clients: dict[str, httpx.AsyncClient] = {}
        for name in (
            "intake",
            "notify",
            "workflow",
            "tracking",
            "stats",
        ):  # intake first: it makes the stream
            clients[name] = await started.enter_async_context(_serving(apps[name]))
        apps["workflow"].state.http = _in_process(clients["intake"], "http://intake")
        apps["workflow"].state.notify_http = _in_process(clients["notify"], "http://notify")
        apps["notify"].state.intake = _in_process(clients["intake"], "http://intake")
        apps["tracking"].state.http = _in_process(clients["intake"], "http://intake")
        yield Stack(module_env, apps, clients, module_smtp, sms_dir)


@pytest.fixture(scope="module")
def module_tokens(issuer: Path) -> Tokens:
    return Tokens(issuer)


async def submit_and_open(stack: Stack, tokens: Tokens, procedure: str, **case: Any) -> dict[str, Any]:
    """Submit a case of `procedure` (`case`: `make_case`'s options) and wait until workflow opened it:
    intake's answer with workflow's view of it."""
    answer = await stack["intake"].post("/v1/cases", json=make_case(procedure, **case))
    assert answer.status_code == 201, answer.text
    submitted = answer.json()
    opened = await eventually(
        lambda: stack["workflow"].get(f"/v1/cases/{submitted['case_id']}", headers=tokens("admin")),
        until=lambda r: r.status_code == 200,
    )
    assert opened.status_code == 200, opened.text
    return {**submitted, **opened.json()}
