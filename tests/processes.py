"""Services as real processes (uvicorn), for tests that kill them or drive them from a browser."""

from __future__ import annotations

import os
from pathlib import Path

from devtools.servers import UvicornProcess


class ServiceProcess(UvicornProcess):
    def __init__(self, app: str, *, env: dict[str, str], log_dir: Path, port: int | None = None) -> None:
        super().__init__(app, env=env, port=port)
        self.log = log_dir / f"{app.split('.')[1]}-{self.port}.log"


def service_env(database_url: str, nats_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "NATS_URL": nats_url, "ENVIRONMENT": "test", **extra}
