"""Apply one service's migrations and exit: `python -m shared.migrate <service>`.

It is the first thing a service does at start-up (`shared.runtime.open_runtime`), alone: the migrations
Job (deploy/k8s) runs it for every service before a rollout, so that a migration that fails stops the
rollout instead of the new pods' start-up, and the new pods find their schema ready (their own migration
at start-up then applies nothing, under the same advisory lock). `DATABASE_URL` is the service's own: its
PostgreSQL role owns its schema.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from shared.db import create_pool, migrate
from shared.settings import REPO_ROOT, ServiceSettings

log = logging.getLogger("shared.migrate")

# What each service's `create_app` passes to `build_app` (schema = the service's name): the writers keep
# events and an outbox, every service folds the stream, the writers take idempotency keys.
# tests/deploy/test_migrations.py checks that this is what each app migrates at start-up.
SHARED_SQL: dict[str, tuple[str, ...]] = {
    "intake": ("eventstore", "projection", "idempotency"),
    "workflow": ("eventstore", "projection", "idempotency"),
    "tracking": ("projection",),
    "stats": ("projection",),
    "notify": ("projection",),
}


async def migrate_service(service: str, *, settings: ServiceSettings) -> list[str]:
    """Apply the service's migrations not applied yet; return their names."""
    directory = REPO_ROOT / "services" / service / "migrations"
    pool = await create_pool(settings.database_url, max_size=1)
    try:
        return await migrate(pool, schema=service, directory=directory, shared=SHARED_SQL[service])
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.migrate", description=__doc__.split("\n")[0])
    parser.add_argument("service", choices=sorted(SHARED_SQL))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    applied = asyncio.run(migrate_service(args.service, settings=ServiceSettings()))
    log.info("schema %s is up to date (%d migration(s) applied now)", args.service, len(applied))
    return 0


if __name__ == "__main__":
    sys.exit(main())
