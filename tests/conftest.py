"""Real parts for every test: a PostgreSQL server for the session (a fresh database per test) and a fresh
NATS JetStream server per test, both on free ports, both from the project's pip packages."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from devtools import dev_issuer
from devtools.servers import NatsServer, PostgresServer, SmtpServer
from services.intake.app import create_app as create_intake
from services.intake.settings import IntakeSettings
from services.stats.app import create_app as create_stats
from services.stats.settings import StatsSettings
from services.tracking.app import create_app as create_tracking
from services.tracking.settings import TrackingSettings
from services.workflow.app import create_app as create_workflow
from services.workflow.clock import Clock, ManualClock
from services.workflow.settings import WorkflowSettings
from shared.procedures import CITY_TIMEZONE

# Headless Chromium's fixtures, for the tests that look at pages.
pytest_plugins = ["tests.browser"]

_databases = itertools.count(1)

# One in-memory exporter for the whole run, installed before any app so that setup_telemetry keeps it.
_exporter = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(_exporter))
trace.set_tracer_provider(_provider)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _exporter.clear()
    yield _exporter
    _exporter.clear()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer(data=tmp_path_factory.mktemp("pg") / "data").start()
    yield server
    server.stop()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(store=tmp_path / "nats").start()
    yield server
    server.stop(kill=True)


class Smtp(SmtpServer):
    """The local SMTP server `make run` starts (aiosmtpd, every message kept in a Maildir)."""

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages() if m["To"] == address]


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[Smtp]:
    server = Smtp(maildir=tmp_path / "mail")
    server.start()
    yield server
    server.stop()


@dataclass
class Env:
    database_url: str
    nats_url: str
    pg: PostgresServer
    nats: NatsServer

    def variables(self) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "NATS_URL": self.nats_url,
            "ENVIRONMENT": "test",
            "LOG_LEVEL": "INFO",
        }


@pytest.fixture
def env(pg_server: PostgresServer, nats_server: NatsServer) -> Env:
    url = pg_server.create_database(f"test_{os.getpid()}_{next(_databases)}")
    return Env(database_url=url, nats_url=nats_server.url, pg=pg_server, nats=nats_server)


@pytest.fixture
def own_env(tmp_path: Path, nats_server: NatsServer) -> Iterator[Env]:
    """Like `env`, on a PostgreSQL server of the test's own: for tests that take PostgreSQL down, so that
    the session's server, and every later test, never depends on them bringing it back."""
    server = PostgresServer(data=tmp_path / "own-pg").start()
    try:
        yield Env(
            database_url=server.create_database("suivi"),
            nats_url=nats_server.url,
            pg=server,
            nats=nats_server,
        )
    finally:
        server.stop(mode="immediate")


async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as client:
            yield client


def intake_settings(env: Env, **overrides: Any) -> IntakeSettings:
    return IntakeSettings(
        database_url=env.database_url, nats_url=env.nats_url, environment="test", **overrides
    )


def tracking_settings(env: Env, **overrides: Any) -> TrackingSettings:
    return TrackingSettings(
        database_url=env.database_url, nats_url=env.nats_url, environment="test", **overrides
    )


@pytest.fixture
async def intake(env: Env) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(create_intake(intake_settings(env))):
        yield client


@pytest.fixture
async def tracking(env: Env) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(create_tracking(tracking_settings(env))):
        yield client


def stats_settings(env: Env, **overrides: Any) -> StatsSettings:
    return StatsSettings(
        database_url=env.database_url, nats_url=env.nats_url, environment="test", **overrides
    )


@pytest.fixture
async def stats(env: Env) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(create_stats(stats_settings(env))):
        yield client


@pytest.fixture(scope="session")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A development identity provider's keys, for signing agent tokens in tests."""
    directory = tmp_path_factory.mktemp("issuer")
    dev_issuer.ensure_keys(directory)
    return directory


@dataclass
class Tokens:
    directory: Path

    def __call__(self, role: str = "agent", *services: str, agent: str | None = None) -> dict[str, str]:
        """Authorization headers for an agent of `role` in `services` (default: urbanisme)."""
        token = dev_issuer.issue(
            self.directory,
            role=role,
            services=list(services or ["urbanisme"]),
            agent=agent or f"{role}-{'-'.join(services or ['urbanisme'])}",
        )
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def tokens(issuer: Path) -> Tokens:
    return Tokens(issuer)


def workflow_settings(env: Env, issuer: Path, **overrides: Any) -> WorkflowSettings:
    return WorkflowSettings(
        database_url=env.database_url,
        nats_url=env.nats_url,
        environment="test",
        oidc_jwks_file=issuer / dev_issuer.JWKS_FILE,
        oidc_issuer=dev_issuer.DEV_ISSUER,
        **overrides,
    )


@pytest.fixture
def clock() -> ManualClock:
    """workflow's clock, starting now (intake dates submissions by the real clock) and moved by the test."""
    return ManualClock(datetime.now(CITY_TIMEZONE))


@pytest.fixture
async def workflow(env: Env, issuer: Path, intake: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    app = create_workflow(workflow_settings(env, issuer, intake_internal_url="http://intake"))
    async for client in _client(app):
        reach_intake_in_process(app, intake)
        yield client


def reach_intake_in_process(workflow: FastAPI, intake: httpx.AsyncClient) -> None:
    """workflow asks intake for applicants over HTTP; in-process, that HTTP goes to intake's ASGI app."""
    workflow.state.http = httpx.AsyncClient(transport=intake._transport, base_url="http://intake")


def workflow_app(env: Env, issuer: Path, *, clock: Clock | None = None, **overrides: Any) -> FastAPI:
    return create_workflow(workflow_settings(env, issuer, **overrides), clock=clock)
