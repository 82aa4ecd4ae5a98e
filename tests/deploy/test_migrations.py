"""The migrations Job applies what each service applies at start-up, as that service's own role.

`python -m shared.migrate <service>` (shared/migrate.py) must migrate exactly what the service's
`create_app` gives `build_app`: a service that starts to use another shared table without it would find
the Job's schema incomplete. Then, on a real PostgreSQL prepared as the CloudNativePG cluster's bootstrap
does (deploy/k8s/postgres/cluster.yaml), each service's migrations run as its role, a second run applies
nothing (the pods' start-up after the Job), and a role cannot read another service's schema.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import asyncpg
import pytest

from devtools import dev_issuer
from devtools.servers import PostgresServer
from shared import migrate
from shared.settings import REPO_ROOT, ServiceSettings
from tests.deploy import kustomize
from tests.deploy.manifests import K8S, NAMESPACE, OVERLAYS, SERVICES, containers, env_entries, find, rendered


class _Built(Exception):
    """Stops `create_app` once `build_app` has been called: what it was given is all this needs."""


def build_app_arguments(service: str) -> dict[str, Any]:
    module = importlib.import_module(f"services.{service}.app")
    seen: dict[str, Any] = {}

    def record(**kwargs: Any) -> None:
        seen.update(kwargs)
        raise _Built

    jwks = dev_issuer.ensure_keys(Path(tempfile.mkdtemp()) / "dev-issuer")
    local = {"OIDC_ISSUER": dev_issuer.DEV_ISSUER, "OIDC_JWKS_FILE": str(jwks)}
    with (
        mock.patch.dict(os.environ, local),
        mock.patch.object(module, "build_app", record),
        pytest.raises(_Built),
    ):
        module.create_app()
    return seen


@pytest.mark.parametrize("service", SERVICES)
def test_the_job_migrates_what_the_service_migrates_at_start_up(service: str) -> None:
    given = build_app_arguments(service)
    assert given["service"] == service, "the schema is the service's name (shared/app.py)"
    assert migrate.SHARED_SQL[service] == given["shared_sql"], (
        f"shared/migrate.py SHARED_SQL[{service!r}] must be {given['shared_sql']} (services/{service}/app.py)"
    )
    assert Path(given["migrations"]).resolve() == (REPO_ROOT / "services" / service / "migrations").resolve()


def test_every_service_with_migrations_is_known_to_shared_migrate() -> None:
    assert sorted(migrate.SHARED_SQL) == SERVICES


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_job_runs_each_services_migrations_with_its_own_database_url(overlay: str) -> None:
    job = find(rendered(overlay), "Job", "suivi-migrate", NAMESPACE)
    assert job is not None, "deploy/k8s/base/migrations-job.yaml"
    boxes = containers(job)
    assert sorted(box["name"] for box in boxes) == SERVICES
    for box in boxes:
        assert box["command"] == ["python", "-m", "shared.migrate", box["name"]]
        ref = env_entries(box)["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "suivi-database", "key": box["name"]}, f"{box['name']}: its own DATABASE_URL"
    # Before the Deployments: Argo CD runs it as a PreSync hook; by hand, README.md says how.
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def bootstrap_sql() -> list[str]:
    cluster = kustomize.load_documents(K8S / "postgres" / "cluster.yaml")[0]
    statements: list[str] = cluster["spec"]["bootstrap"]["initdb"]["postInitApplicationSQL"]
    return statements


async def prepare(pg: PostgresServer, database: str) -> dict[str, str]:
    """The cluster's bootstrap SQL on `database`, passwords as managed.roles sets them; each service's URL."""
    conn = await asyncpg.connect(pg.url(database))
    try:
        await conn.execute(f'REVOKE CREATE ON DATABASE "{database}" FROM PUBLIC')
        for statement in bootstrap_sql():
            await conn.execute(statement.replace(" ON DATABASE suivi ", f' ON DATABASE "{database}" '))
        for service in SERVICES:
            await conn.execute(f"ALTER ROLE suivi_{service} PASSWORD 'pw-{service}'")
    finally:
        await conn.close()
    base = pg.url(database)
    return {s: base.replace("postgres@", f"suivi_{s}:pw-{s}@", 1) for s in SERVICES}


async def drop_roles(pg: PostgresServer, database: str) -> None:
    conn = await asyncpg.connect(pg.url(database))
    try:
        for service in SERVICES:
            await conn.execute(f"DROP OWNED BY suivi_{service} CASCADE")
            await conn.execute(f"DROP ROLE suivi_{service}")
    finally:
        await conn.close()


async def migrate_each(urls: dict[str, str]) -> dict[str, list[str]]:
    return {
        service: await migrate.migrate_service(service, settings=ServiceSettings(database_url=url))
        for service, url in urls.items()
    }


async def reads_intake(url: str) -> bool:
    conn = await asyncpg.connect(url)
    try:
        await conn.fetch("SELECT * FROM intake.schema_migrations")
    except asyncpg.InsufficientPrivilegeError:
        return False
    finally:
        await conn.close()
    return True


def test_each_role_migrates_its_own_schema_once_and_reads_no_other(pg_server: PostgresServer) -> None:
    database = f"suivi_migrate_{os.getpid()}"
    pg_server.create_database(database)
    urls = asyncio.run(prepare(pg_server, database))
    try:
        first = asyncio.run(migrate_each(urls))
        for service, applied in first.items():
            own = sorted(p.name for p in (REPO_ROOT / "services" / service / "migrations").glob("*.sql"))
            assert [name for name in applied if not name.startswith("shared/")] == own, service
        assert asyncio.run(migrate_each(urls)) == {s: [] for s in SERVICES}, "a second run applies nothing"
        assert asyncio.run(reads_intake(urls["intake"]))
        assert not asyncio.run(reads_intake(urls["tracking"])), "tracking's role reads intake's schema"
    finally:
        asyncio.run(drop_roles(pg_server, database))


def test_the_entry_point_refuses_an_unknown_service(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        migrate.main(["billing"])
    assert exit_.value.code == 2
    assert "invalid choice: 'billing'" in capsys.readouterr().err
