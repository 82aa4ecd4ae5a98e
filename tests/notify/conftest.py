"""notify in process for the tests (its settings, the app, a client), and a real HTTP receiver of webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools import dev_issuer
from devtools.servers import free_port
from services.notify.app import create_app as create_notify
from services.notify.settings import NotifySettings
from tests.conftest import Env, _client


def notify_settings(env: Env, issuer: Path, **overrides: Any) -> NotifySettings:
    """notify's settings for a test: quick polls and retries, loopback webhooks allowed, no real SMTP
    server unless the test gives one (`smtp_port`)."""
    values: dict[str, Any] = {
        "database_url": env.database_url,
        "nats_url": env.nats_url,
        "environment": "test",
        "oidc_jwks_file": issuer / dev_issuer.JWKS_FILE,
        "oidc_issuer": dev_issuer.DEV_ISSUER,
        "intake_internal_url": "http://intake",
        "smtp_port": free_port(),
        "send_poll_seconds": 0.1,
        "send_retry_schedule": (0.3, 0.3, 0.3),
        "webhook_allow_private": ("loopback",),
        "webhook_retry_schedule": (0.2, 0.3, 0.5),
        "webhook_timeout_seconds": 5,
        "webhook_poll_seconds": 0.2,
        **overrides,
    }
    return NotifySettings(**values)


@asynccontextmanager
async def notify_client(
    settings: NotifySettings, intake: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    """notify in process, reaching intake's internal API in process too."""
    app = create_notify(settings)
    async for client in _client(app):
        app.state.intake = httpx.AsyncClient(transport=intake._transport, base_url="http://intake")
        yield client


@pytest.fixture
async def notify(
    env: Env, issuer: Path, intake: httpx.AsyncClient, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    async with notify_client(notify_settings(env, issuer, sms_dir=str(tmp_path / "sms")), intake) as client:
        yield client


# --- A webhook receiver ------------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int | None = None

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


Answer = int | tuple[int, dict[str, str]]


@dataclass
class Receiver:
    """A real HTTP/1.1 server on a free loopback port: it records every request and answers as told
    (`answer`: a status, or a function of the request giving a status and headers), after `delay`
    seconds. `stop()` takes it down (connections refused), `start()` brings it back on the same port."""

    answer: Answer | Callable[[Received], Answer] = 204
    delay: float = 0.0
    # Served over TLS with this context; `sni` then holds the names clients asked for.
    tls: ssl.SSLContext | None = None
    port: int = field(default_factory=free_port)
    requests: list[Received] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _connections: set[asyncio.StreamWriter] = field(default_factory=set)
    _handlers: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/hooks"

    def delivered(self) -> list[Received]:
        """The requests it answered with a 2xx, in the order they came."""
        return [r for r in self.requests if r.status is not None and 200 <= r.status < 300]

    def answered(self) -> int:
        return sum(1 for r in self.requests if r.status is not None)

    async def start(self) -> Receiver:
        if self.tls is not None:
            self.tls.sni_callback = lambda _socket, name, _context: self.sni.append(name)
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True, ssl=self.tls
        )
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._connections):
                writer.close()
            for handler in list(self._handlers):
                handler.cancel()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
        try:
            while request := await _read_request(reader):
                self.requests.append(request)
                await asyncio.sleep(self.delay)
                answer = self.answer(request) if callable(self.answer) else self.answer
                status, headers = answer if isinstance(answer, tuple) else (answer, {})
                lines = [
                    f"HTTP/1.1 {status} X",
                    "Content-Length: 0",
                    *(f"{k}: {v}" for k, v in headers.items()),
                ]
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
                await writer.drain()
                request.status = status
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._connections.discard(writer)
            self._handlers.discard(handler)
            with contextlib.suppress(Exception):
                writer.close()


async def _read_request(reader: asyncio.StreamReader) -> Received | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Received(path=request_line.split(" ")[1], headers=headers, body=body, at=time.monotonic())


@pytest.fixture
async def receivers() -> AsyncIterator[Callable[..., Any]]:
    """`await receivers(answer=..., delay=...)`: a started `Receiver`, stopped at the end of the test."""
    started: list[Receiver] = []

    async def start(**options: Any) -> Receiver:
        receiver = await Receiver(**options).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        await receiver.stop()
