"""`make run`: the whole system on one machine.

Starts a NATS server with JetStream and a PostgreSQL server from the project's pip packages (unless
NATS_URL / DATABASE_URL point at existing ones), every service as its own process, loads demo data and
prints the URLs. Data lives in `.data/` and survives a restart. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from types import FrameType

from devtools import demo, dev_issuer
from devtools.servers import NatsServer, PostgresServer, UvicornProcess
from shared.settings import REPO_ROOT

DATA = REPO_ROOT / ".data"
NATS_PORT = int(os.environ.get("SUIVI_NATS_PORT", "24222"))
PG_PORT = int(os.environ.get("SUIVI_PG_PORT", "25432"))


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    description: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


SERVICES = (
    Service("intake", int(os.environ.get("INTAKE_PORT", "8001")), "submit a procedure (API docs at /docs)"),
    Service("workflow", int(os.environ.get("WORKFLOW_PORT", "8002")), "agents' API (token: make token)"),
    Service("tracking", int(os.environ.get("TRACKING_PORT", "8003")), "follow a case by its tracking code"),
    Service(
        "stats", int(os.environ.get("STATS_PORT", "8004")), "waiting times (JSON at /v1/stats/procedures)"
    ),
)


def _url(name: str) -> str:
    return next(s.url for s in SERVICES if s.name == name)


class Stack:
    def __init__(self) -> None:
        self.nats: NatsServer | None = None
        self.pg: PostgresServer | None = None
        self.procs: dict[str, UvicornProcess] = {}

    def start_servers(self) -> dict[str, str]:
        env = dict(os.environ)
        if "NATS_URL" not in env:
            self.nats = NatsServer(store=DATA / "nats", port=NATS_PORT).start()
            env["NATS_URL"] = self.nats.url
            print(f"NATS JetStream   {self.nats.url}  (data in {DATA / 'nats'})")
        if "DATABASE_URL" not in env:
            self.pg = PostgresServer(data=DATA / "postgres", port=PG_PORT).start()
            env["DATABASE_URL"] = self._database(self.pg)
            print(f"PostgreSQL       {env['DATABASE_URL']}  (data in {DATA / 'postgres'})")
        env.setdefault("TRACKING_PUBLIC_URL", _url("tracking"))
        env.setdefault("INTAKE_INTERNAL_URL", _url("intake"))
        if "OIDC_JWKS_URL" not in env:
            # The development identity provider: `make token` signs agent tokens with its key.
            env.setdefault("OIDC_JWKS_FILE", str(dev_issuer.ensure_keys(DATA / "dev-issuer")))
            env.setdefault("OIDC_ISSUER", dev_issuer.DEV_ISSUER)
        return env

    @staticmethod
    def _database(pg: PostgresServer) -> str:
        try:
            return pg.create_database("suivi")
        except subprocess.CalledProcessError as exc:
            if b"already exists" not in exc.stderr:
                raise
            return pg.url("suivi")

    def start_services(self, env: dict[str, str]) -> None:
        for s in SERVICES:
            self.procs[s.name] = UvicornProcess(f"services.{s.name}.app", env=env, port=s.port).launch()
        for proc in self.procs.values():
            proc.wait_ready()

    def watch(self) -> None:
        while True:
            for name, proc in self.procs.items():
                if not proc.running():
                    raise SystemExit(f"{name} stopped; stopping everything (see its log above)")
            time.sleep(0.5)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()
        for server in (self.pg, self.nats):
            if server is not None:
                server.stop()


def _print_urls(cases: list[dict[str, str]]) -> None:
    print("\nSuivi is running. Ctrl-C stops everything.\n")
    for s in SERVICES:
        print(f"  {s.name:<10} {s.url:<24} {s.description}")
    print("\nAn agent token for the workflow API: make -s token ROLE=agent SERVICE=urbanisme")
    print("18 months of realistic past cases for the statistics (in another terminal): make demo")
    print("\nDemo cases (tracking code, page):")
    for case in cases:
        print(f"  {case['procedure']:<30} {case['tracking_code']}  {case['tracking_url']}")
    print()


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> None:
    DATA.mkdir(exist_ok=True)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    stack = Stack()
    try:
        env = stack.start_servers()
        stack.start_services(env)
        _print_urls(demo.load(_url("intake")))
        stack.watch()
    except KeyboardInterrupt:
        print("\nstopping Suivi...")
    finally:
        stack.stop()
        print("stopped.")


if __name__ == "__main__":
    main()
