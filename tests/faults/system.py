"""The five services as real processes wired as deployed, and the real SMTP server notify writes to: what
the fault tests run their load against, kill and restart."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from devtools import dev_issuer
from tests.conftest import Smtp
from tests.processes import ServiceProcess, service_env

SERVICES = ("intake", "workflow", "tracking", "stats", "notify")

# Short enough that a fault heals within the test, long enough to ride out a service's restart: readers
# retry every second at most and get an unacknowledged message back after 5 s; notify's sender leases a
# message for 2 s and tries a mail again for about 30 s before it would give up on it.
QUICK = {
    "CONSUMER_ACK_WAIT_SECONDS": "5",
    "CONSUMER_RETRY_MAX_SECONDS": "1",
    "LOG_LEVEL": "INFO",
}
NOTIFY_QUICK = {
    "NOTIFY_POLL_SECONDS": "0.1",
    "NOTIFY_SEND_LEASE_SECONDS": "2",
    "NOTIFY_RETRY_SCHEDULE": ",".join(["1"] * 10 + ["2"] * 10),
}


@dataclass
class System:
    """intake, workflow, tracking, stats and notify on one PostgreSQL database and one NATS (a server or a
    cluster: `nats_url` may list several, comma-separated), each logging to `logs`."""

    database_url: str
    nats_url: str
    issuer: Path
    smtp: Smtp
    logs: Path
    extra: dict[str, str] = field(default_factory=dict)
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    def __post_init__(self) -> None:
        common = service_env(
            self.database_url,
            self.nats_url,
            OIDC_ISSUER=dev_issuer.DEV_ISSUER,
            OIDC_JWKS_FILE=str(self.issuer / dev_issuer.JWKS_FILE),
            **QUICK,
            **self.extra,
        )
        self.processes = {
            name: ServiceProcess(f"services.{name}.app", env=dict(common), log_dir=self.logs)
            for name in SERVICES
        }
        url = {name: process.url for name, process in self.processes.items()}
        self.processes["intake"].env["TRACKING_PUBLIC_URL"] = url["tracking"]
        self.processes["workflow"].env |= {
            "INTAKE_INTERNAL_URL": url["intake"],
            "NOTIFY_INTERNAL_URL": url["notify"],
        }
        self.processes["tracking"].env |= {
            "INTAKE_URL": url["intake"],
            # The final check looks every case up by its code; the limits guard against guessing.
            "TRACKING_LOOKUP_LIMIT": "100000/minute",
            "TRACKING_MISS_LIMIT": "100000/minute",
        }
        self.processes["stats"].env["STATS_SUPPRESSION_THRESHOLD"] = "1"
        self.processes["notify"].env |= {
            "INTAKE_INTERNAL_URL": url["intake"],
            "TRACKING_PUBLIC_URL": url["tracking"],
            "NOTIFY_PUBLIC_URL": url["notify"],
            "SMTP_PORT": str(self.smtp.port),
            "SMS_DIR": str(self.logs / "sms"),
            **NOTIFY_QUICK,
        }

    def url(self, name: str) -> str:
        return self.processes[name].url

    def start(self) -> None:
        """Launch all five at once (they start in parallel), then wait until each is ready."""
        for process in self.processes.values():
            process.launch()
        for process in self.processes.values():
            process.wait_ready()

    async def kill(self, name: str) -> None:
        """SIGKILL, as when a node dies: no graceful shutdown."""
        await asyncio.to_thread(self.processes[name].kill)

    async def restart(self, name: str) -> float:
        """Start the service again on its port; returns how long it took to be ready (seconds)."""
        began = time.monotonic()
        await asyncio.to_thread(self.processes[name].start)
        return time.monotonic() - began

    def stop(self) -> None:
        for process in reversed(self.processes.values()):
            process.stop()
