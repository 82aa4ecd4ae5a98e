"""Real parts for every test: a PostgreSQL server for the session (a fresh database per test) and a fresh
NATS JetStream server per test, both on free ports, both from the project's pip packages."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
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

from devtools.servers import NatsServer, PostgresServer
from services.intake.app import create_app as create_intake
from services.intake.settings import IntakeSettings
from services.tracking.app import create_app as create_tracking
from services.tracking.settings import TrackingSettings

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
