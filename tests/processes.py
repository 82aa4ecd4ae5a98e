"""Services as real processes (uvicorn), for tests that kill them or drive them from a browser."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from devtools import dev_issuer
from devtools.servers import UvicornProcess


class ServiceProcess(UvicornProcess):
    def __init__(self, app: str, *, env: dict[str, str], log_dir: Path, port: int | None = None) -> None:
        super().__init__(app, env=env, port=port)
        self.log = log_dir / f"{app.split('.')[1]}-{self.port}.log"


def service_env(database_url: str, nats_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "NATS_URL": nats_url, "ENVIRONMENT": "test", **extra}


@contextmanager
def running_services(
    database_url: str,
    nats_url: str,
    *,
    logs: Path,
    issuer: Path | None = None,
    intake_env: dict[str, str] | None = None,
) -> Iterator[dict[str, str]]:
    """tracking and intake, and workflow trusting `issuer`'s tokens when one is given, as real processes
    wired as deployed: tracking sends its forms on to intake (`INTAKE_URL`), intake links to tracking's
    pages (`TRACKING_PUBLIC_URL`), workflow asks intake's internal API (`INTAKE_INTERNAL_URL`). Yields
    their URLs by name; started in that order, stopped in the reverse one. `intake_env`: intake's own
    settings (`DOCUMENTS_DIR`...); each logs to `logs`."""
    tracking = ServiceProcess("services.tracking.app", env=service_env(database_url, nats_url), log_dir=logs)
    intake = ServiceProcess(
        "services.intake.app",
        log_dir=logs,
        env=service_env(database_url, nats_url, TRACKING_PUBLIC_URL=tracking.url, **(intake_env or {})),
    )
    tracking.env["INTAKE_URL"] = intake.url
    processes = {"tracking": tracking, "intake": intake}
    if issuer is not None:
        processes["workflow"] = ServiceProcess(
            "services.workflow.app",
            log_dir=logs,
            env=service_env(
                database_url,
                nats_url,
                OIDC_ISSUER=dev_issuer.DEV_ISSUER,
                OIDC_JWKS_FILE=str(issuer / dev_issuer.JWKS_FILE),
                INTAKE_INTERNAL_URL=intake.url,
            ),
        )
    try:
        for process in processes.values():
            process.start()
        yield {name: process.url for name, process in processes.items()}
    finally:
        for process in reversed(processes.values()):
            process.stop()


@dataclass
class Services:
    """intake, tracking and workflow running (`running_services`), and the headers of one of workflow's
    agents: what a browser test drives. Its module's `Site` adds what its tests do."""

    intake: str
    tracking: str
    workflow: str
    agent: dict[str, str]

    def act(self, case_id: str, action: str, **extra: Any) -> None:
        """The agent does `action` on the case at the version workflow shows now, once workflow has opened
        it; `extra` goes in the body (`comment`, `duplicate_of`...)."""
        url, deadline = f"{self.workflow}/v1/cases/{case_id}", time.monotonic() + 20
        while (seen := httpx.get(url, headers=self.agent, timeout=5)).status_code != 200:
            assert time.monotonic() < deadline, "workflow did not open the case"
            time.sleep(0.1)
        body = {"action": action, "expected_version": seen.json()["version"], **extra}
        answer = httpx.post(f"{url}/actions", headers=self.agent, json=body, timeout=10)
        assert answer.status_code == 200, answer.text
