"""The fault tests' parts: the five services as processes (notify writing to the `smtp` fixture's
server), the agents of the load, and a NATS cluster."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devtools.servers import PostgresServer
from tests.conftest import Smtp, Tokens, _databases
from tests.faults.cluster import NatsCluster
from tests.faults.system import System

MakeSystem = Callable[..., System]


@pytest.fixture
def make_system(issuer: Path, smtp: Smtp, tmp_path: Path) -> Iterator[MakeSystem]:
    """`make_system(database_url, nats_url, **env)`: the five services started, stopped at the end."""
    started: list[System] = []

    def make(database_url: str, nats_url: str, **extra: str) -> System:
        system = System(
            database_url=database_url, nats_url=nats_url, issuer=issuer, smtp=smtp, logs=tmp_path, extra=extra
        )
        started.append(system)
        system.start()
        return system

    yield make
    for system in started:
        system.stop()


@pytest.fixture
def agents(tokens: Tokens) -> list[dict[str, str]]:
    """Three agents of the service that handles building permits."""
    return [tokens("agent", "urbanisme", agent=f"agent-{i}") for i in (1, 2, 3)]


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    cluster = NatsCluster(root=tmp_path / "nats-cluster").start()
    yield cluster
    cluster.stop()


@pytest.fixture
def database(pg_server: PostgresServer) -> str:
    """A fresh database on the session's PostgreSQL (for a test that brings its own NATS)."""
    return pg_server.create_database(f"faults_{os.getpid()}_{next(_databases)}")
