"""`make run`: the whole system on one machine.

Starts a NATS server with JetStream and a PostgreSQL server from the project's pip packages (unless
NATS_URL / DATABASE_URL point at existing ones), a local SMTP server keeping every e-mail in a Maildir
(unless SMTP_HOST names one), every service as its own process, loads demo data and prints the URLs.
Data lives in `.data/` (or `SUIVI_DATA`) and survives a restart. Ctrl-C (or SIGTERM) stops everything it
started; more of them while it stops change nothing, it still stops everything. Every port it opens can be
changed by an environment variable, and a port already taken is reported, with that variable, before
anything starts.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from devtools import demo, dev_issuer
from devtools.servers import NatsServer, PostgresServer, SmtpServer, UvicornProcess
from shared.settings import REPO_ROOT

DATA = Path(os.environ.get("SUIVI_DATA", str(REPO_ROOT / ".data")))


@dataclass(frozen=True)
class Port:
    """A port `make run` listens on, and the environment variable that changes it."""

    what: str
    variable: str
    default: int

    @property
    def number(self) -> int:
        return int(os.environ.get(self.variable, str(self.default)))


NATS_PORT = Port("NATS", "SUIVI_NATS_PORT", 24222)
PG_PORT = Port("PostgreSQL", "SUIVI_PG_PORT", 25432)
# Off the standard 25 and 587: the local SMTP server keeping the e-mails notify sends (unless SMTP_HOST).
SMTP_PORT = Port("SMTP", "SUIVI_SMTP_PORT", 2525)
MAILDIR = DATA / "mail"
SMS_DIR = DATA / "sms"
DOCUMENTS_DIR = DATA / "documents"
# The development key of a 311 app (Open311 `api_key`), made once and kept with the data.
OPEN311_KEY_FILE = DATA / "open311-api-key"


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    description: str
    variable: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _service(name: str, variable: str, default: int, description: str) -> Service:
    return Service(name, Port(name, variable, default).number, description, variable)


SERVICES = (
    _service("intake", "INTAKE_PORT", 8001, "submit a procedure (API docs at /docs)"),
    _service("workflow", "WORKFLOW_PORT", 8002, "agents' API (token: make token)"),
    _service("tracking", "TRACKING_PORT", 8003, "follow a case by its tracking code"),
    _service(
        "stats",
        "STATS_PORT",
        8004,
        "waiting times at /, street reports at /statistiques/signalements, open data at /v1/stats/open-data/",
    ),
    _service("notify", "NOTIFY_PORT", 8005, "citizens' e-mails/SMS and webhooks; /v1/asyncapi.json"),
)


def _taken(port: int) -> bool:
    with socket.socket() as probe:
        # As the servers bind: a port left in TIME_WAIT by a previous run is free for them.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def ports_needed(env: dict[str, str]) -> list[Port]:
    """The ports this run will listen on: NATS, PostgreSQL and SMTP unless their addresses are given, and
    every service."""
    ports = [] if "NATS_URL" in env else [NATS_PORT]
    ports += [] if "DATABASE_URL" in env else [PG_PORT]
    ports += [] if "SMTP_HOST" in env else [SMTP_PORT]
    return ports + [Port(s.name, s.variable, s.port) for s in SERVICES]


def taken_ports(ports: Iterable[Port]) -> list[str]:
    """A line for each port another process already holds, saying how to choose another."""
    return [
        f"port {p.number} ({p.what}) is already in use: stop what holds it, or set {p.variable} to a free port"
        for p in ports
        if _taken(p.number)
    ]


def _url(name: str) -> str:
    return next(s.url for s in SERVICES if s.name == name)


class Stack:
    def __init__(self) -> None:
        self.nats: NatsServer | None = None
        self.pg: PostgresServer | None = None
        self.smtp: SmtpServer | None = None
        self.procs: dict[str, UvicornProcess] = {}

    def start_servers(self) -> dict[str, str]:
        env = dict(os.environ)
        if "NATS_URL" not in env:
            # Known to the stack before it starts: a Ctrl-C during the start still stops it.
            self.nats = NatsServer(store=DATA / "nats", port=NATS_PORT.number)
            self.nats.start()
            env["NATS_URL"] = self.nats.url
            print(f"NATS JetStream   {self.nats.url}  (data in {DATA / 'nats'})")
        if "DATABASE_URL" not in env:
            self.pg = PostgresServer(data=DATA / "postgres", port=PG_PORT.number)
            self.pg.start()
            env["DATABASE_URL"] = self._database(self.pg)
            print(f"PostgreSQL       {env['DATABASE_URL']}  (data in {DATA / 'postgres'})")
        if "SMTP_HOST" not in env:
            self.smtp = SmtpServer(maildir=MAILDIR, port=SMTP_PORT.number)
            self.smtp.start()
            env["SMTP_HOST"], env["SMTP_PORT"] = self.smtp.host, str(self.smtp.port)
            print(f"SMTP             {self.smtp.url}  (every e-mail kept in {MAILDIR / 'new'})")
        env.setdefault("TRACKING_PUBLIC_URL", _url("tracking"))
        env.setdefault("INTAKE_INTERNAL_URL", _url("intake"))
        env.setdefault("INTAKE_URL", _url("intake"))  # tracking sends its page's rating form there
        # Citizens' files (plans, photos): a local folder here, an S3 bucket in production.
        env.setdefault("DOCUMENTS_DIR", str(DOCUMENTS_DIR))
        env.setdefault("OPEN311_API_KEYS", open311_key())
        if "OIDC_JWKS_URL" not in env:
            # The development identity provider: `make token` signs agent tokens with its key. workflow
            # checks agents' tokens with it, and intake admins' (`POST /v1/imports`, ROLE=admin).
            env.setdefault("OIDC_JWKS_FILE", str(dev_issuer.ensure_keys(DATA / "dev-issuer")))
            env.setdefault("OIDC_ISSUER", dev_issuer.DEV_ISSUER)
        _notify_env(env)
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
            self.procs[s.name] = UvicornProcess(f"services.{s.name}.app", env=env, port=s.port)
            self.procs[s.name].launch()
        for proc in self.procs.values():
            proc.wait_ready()

    def watch(self) -> None:
        while True:
            for name, proc in self.procs.items():
                if not proc.running():
                    raise SystemExit(f"{name} stopped; stopping everything (see its log above)")
            time.sleep(0.5)

    def stop(self) -> None:
        """Stops the services, then the SMTP server, PostgreSQL and NATS. Call it with signals held
        (`_stopping`): each part is stopped even if another fails to."""
        parts: list[tuple[str, UvicornProcess | SmtpServer | PostgresServer | NatsServer | None]] = [
            *self.procs.items(),
            ("SMTP", self.smtp),
            ("PostgreSQL", self.pg),
            ("NATS", self.nats),
        ]
        for name, part in parts:
            if part is None:
                continue
            try:
                part.stop()
            except Exception as exc:
                print(f"could not stop {name} cleanly: {exc!r}")


def open311_key() -> str:
    """A 311 app's key for this machine (`POST /open311/v2/requests.json`), random, kept in `.data/`."""
    if not OPEN311_KEY_FILE.is_file():
        OPEN311_KEY_FILE.write_text(secrets.token_urlsafe(24) + "\n", encoding="utf-8")
        OPEN311_KEY_FILE.chmod(0o600)
    return OPEN311_KEY_FILE.read_text(encoding="utf-8").strip()


def _notify_env(env: dict[str, str]) -> None:
    """notify's links in its messages, the SMS it would send, and webhooks to a receiver on this machine."""
    notify = next(s for s in SERVICES if s.name == "notify")
    env.setdefault("NOTIFY_PORT", str(notify.port))
    env.setdefault("NOTIFY_PUBLIC_URL", notify.url)
    env.setdefault("SMS_PROVIDER", "file")
    env.setdefault("SMS_DIR", str(SMS_DIR))
    env.setdefault("WEBHOOK_ALLOW_PRIVATE", "loopback")


def _print_urls(cases: list[dict[str, str]], *, smtp: SmtpServer | None, open311_key: str) -> None:
    print("\nSuivi is running. Ctrl-C stops everything.\n")
    for s in SERVICES:
        print(f"  {s.name:<10} {s.url:<24} {s.description}")
    where = f"one file each in {MAILDIR / 'new'}" if smtp else f"to {os.environ['SMTP_HOST']}"
    print(f"\nThe e-mails citizens would get: {where}; their SMS: in {os.environ.get('SMS_DIR', SMS_DIR)}")
    print(f"Citizens' files (plans, photos): in {os.environ.get('DOCUMENTS_DIR', DOCUMENTS_DIR)}")
    print("\nAn agent token for the workflow API: make -s token ROLE=agent SERVICE=urbanisme")
    print("18 months of realistic past cases for the statistics (in another terminal): make demo")
    print(
        f"\nOpen311 GeoReport v2 (street reports): services at {_url('intake')}/open311/v2/services.json, "
        f"requests (GET, and POST for a 311 app) at {_url('tracking')}/open311/v2/requests.json"
    )
    print(f"  a 311 app's api_key for this machine: {open311_key}  (OPEN311_API_KEYS)")
    print("\nDemo cases (tracking code, page):")
    for case in cases:
        print(f"  {case['procedure']:<30} {case['tracking_code']}  {case['tracking_url']}")
    print()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    _stopping()  # first, so that a second signal, wherever it lands, cannot interrupt the stop
    raise KeyboardInterrupt


def _already_stopping(signum: int, frame: FrameType | None) -> None:
    # Raising here would abandon the stop half-way, leaving services and servers running. `os.write`, not
    # `print`: a print interrupted by a signal whose handler prints raises "reentrant call".
    os.write(2, b"\nalready stopping: every part is being stopped, a moment...\n")


def _stopping() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _already_stopping)


def main() -> None:
    if taken := taken_ports(ports_needed(dict(os.environ))):
        raise SystemExit("cannot start Suivi:\n  " + "\n  ".join(taken))
    DATA.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    stack = Stack()
    try:
        env = stack.start_servers()
        stack.start_services(env)
        open311 = env["OPEN311_API_KEYS"].split(",")[0].strip()
        _print_urls(demo.load(_url("intake")), smtp=stack.smtp, open311_key=open311)
        stack.watch()
    except KeyboardInterrupt:
        print("\nstopping Suivi...", flush=True)
    finally:
        _stopping()
        stack.stop()
        print("stopped.", flush=True)


if __name__ == "__main__":
    main()
