"""PostgreSQL stops answering in the middle of lookups: the API answers 503 in JSON, the page an HTML page
in the reader's language, both soon and with `Retry-After`, and no log line holds the tracking code."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import psutil
import pytest

from devtools.servers import PostgresServer, UvicornProcess
from services.tracking.app import create_app as create_tracking
from shared import tracking_code
from tests.conftest import Env, _client, tracking_settings


@contextmanager
def paused(server: PostgresServer) -> Iterator[None]:
    """Every process of the server stopped (SIGSTOP): connections stay open and nothing answers."""
    assert server.proc is not None
    postmaster = psutil.Process(server.proc.pid)
    processes = [postmaster, *postmaster.children(recursive=True)]
    for process in processes:
        process.suspend()
    try:
        yield
    finally:
        for process in processes:
            with suppress(psutil.NoSuchProcess):
                process.resume()


def forms_of(code: str) -> list[str]:
    bare = code.replace("-", "")
    return [code, bare, code.lower(), bare.lower()]


def assert_never_logged(caplog: pytest.LogCaptureFixture, code: str) -> None:
    records = [r for r in caplog.records if not r.name.startswith("httpx")]  # the test's own client
    assert records
    for record in records:
        exception = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
        line = " ".join(
            [record.getMessage(), repr(record.args), exception, *(str(v) for v in vars(record).values())]
        )
        for form in forms_of(code):
            assert form not in line, (record.name, record.getMessage())


async def test_an_outage_is_a_503_in_json_and_an_html_page_and_never_logs_the_code(
    own_env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    code = tracking_code.generate()
    settings = tracking_settings(own_env, unknown_code_grace_seconds=0, database_timeout_seconds=1)
    async for client in _client(create_tracking(settings)):
        caplog.set_level(logging.DEBUG)
        with paused(own_env.pg):
            api = await client.get(f"/v1/track/{code}", params={"lang": "en"})
            linked = await client.get(f"/suivi/{code}", params={"lang": "fr"})
            typed = await client.get(
                "/suivi", params={"code": code.replace("-", "").lower()}, headers={"Accept-Language": "en"}
            )

    assert api.status_code == 503
    assert api.headers["content-type"] == "application/problem+json"
    assert api.json()["type"] == "error.service_unavailable"
    assert int(api.headers["Retry-After"]) >= 1
    for page, lang, heading in (
        (linked, "fr", "Service momentanément indisponible"),
        (typed, "en", "Service briefly unavailable"),
    ):
        assert page.status_code == 503
        assert page.headers["content-type"].startswith("text/html")
        assert f'<html lang="{lang}">' in page.text
        assert f"<h1>{heading}</h1>" in page.text
        assert int(page.headers["Retry-After"]) >= 1
        assert page.headers["cache-control"] == "no-store"
    assert_never_logged(caplog, code)


def test_servers_run_without_an_access_log() -> None:
    """uvicorn's access log writes raw paths, and a path may hold a tracking code."""
    options = inspect.signature(UvicornProcess).parameters["options"].default
    assert "--no-access-log" in options
