"""`make run`: a port already taken is named with the variable that changes it, before anything starts;
Ctrl-C stops everything, and a second Ctrl-C while it stops does not leave anything running. Its local
SMTP server keeps every e-mail in a Maildir."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import psutil
import pytest

from devtools import run
from devtools.servers import SmtpServer, free_port

REPO = Path(__file__).resolve().parents[2]
PORT_VARIABLES = (
    "SUIVI_NATS_PORT",
    "SUIVI_PG_PORT",
    "INTAKE_PORT",
    "WORKFLOW_PORT",
    "TRACKING_PORT",
    "STATS_PORT",
    "NOTIFY_PORT",
    "SUIVI_SMTP_PORT",
)


@pytest.fixture
def held_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def test_a_port_in_use_is_named_with_the_variable_that_changes_it(
    held_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUIVI_PG_PORT", str(held_port))
    taken = run.taken_ports([run.PG_PORT, run.Port("NATS", "SUIVI_NATS_PORT", free_port())])
    assert taken == [
        f"port {held_port} (PostgreSQL) is already in use: stop what holds it, or set SUIVI_PG_PORT to a free port"
    ]


def test_servers_given_by_url_need_no_port() -> None:
    needed = run.ports_needed(
        {"NATS_URL": "nats://elsewhere", "DATABASE_URL": "postgresql://elsewhere", "SMTP_HOST": "elsewhere"}
    )
    assert [p.variable for p in needed] == [
        "INTAKE_PORT",
        "WORKFLOW_PORT",
        "TRACKING_PORT",
        "STATS_PORT",
        "NOTIFY_PORT",
    ]
    assert {p.variable for p in run.ports_needed({})} == set(PORT_VARIABLES)


def test_a_taken_smtp_port_is_named_with_its_variable(
    held_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUIVI_SMTP_PORT", str(held_port))
    assert run.taken_ports([run.SMTP_PORT]) == [
        f"port {held_port} (SMTP) is already in use: stop what holds it, or set SUIVI_SMTP_PORT to a free port"
    ]


def _environment(data: Path, **ports: int) -> dict[str, str]:
    given = ("NATS_URL", "DATABASE_URL", "SMTP_HOST", "OIDC_JWKS_URL")
    env = {k: v for k, v in os.environ.items() if k not in given}
    env.update({name: str(ports.get(name) or free_port()) for name in PORT_VARIABLES})
    return env | {"SUIVI_DATA": str(data), "PYTHONUNBUFFERED": "1"}


def test_run_refuses_to_start_on_a_taken_port(held_port: int, tmp_path: Path) -> None:
    started = subprocess.run(
        [sys.executable, "-m", "devtools.run"],
        cwd=REPO,
        env=_environment(tmp_path / "data", INTAKE_PORT=held_port),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode != 0
    assert f"port {held_port} (intake) is already in use" in started.stderr
    assert "INTAKE_PORT" in started.stderr
    assert not (tmp_path / "data").exists(), "nothing started"


def _read_until(proc: subprocess.Popen[str], words: str, *, timeout: float) -> str:
    assert proc.stdout is not None
    seen, deadline = "", time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        line = proc.stdout.readline()
        seen += line
        if words in line:
            return seen
    raise AssertionError(f"{words!r} not printed in {timeout} s:\n{seen}")


def test_a_second_ctrl_c_while_stopping_still_stops_everything(tmp_path: Path) -> None:
    notify_port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtools.run"],
        cwd=REPO,
        env=_environment(tmp_path / "data", NOTIFY_PORT=notify_port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        printed = _read_until(proc, "Demo cases", timeout=150)
        assert f"notify     http://127.0.0.1:{notify_port}" in printed
        assert f"{tmp_path / 'data' / 'mail' / 'new'}" in printed, "where to read the e-mails"
        assert f"{tmp_path / 'data' / 'sms'}" in printed, "where to read the SMS"
        started = psutil.Process(proc.pid).children(recursive=True)
        assert len(started) >= 8, "NATS, PostgreSQL, SMTP and five services"
        proc.send_signal(signal.SIGINT)
        _read_until(proc, "stopping Suivi", timeout=10)
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 0
        _gone, alive = psutil.wait_procs(started, timeout=10)
        assert not alive, f"left running: {alive}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_local_smtp_server_keeps_every_message_in_its_maildir(tmp_path: Path) -> None:
    server = SmtpServer(maildir=tmp_path / "mail").start()
    try:
        mail = EmailMessage()
        mail["From"], mail["To"] = "Mairie <suivi@mairie.example>", "camille.martin@example.org"
        mail["Subject"] = "Votre dossier a été reçu"
        mail.set_content("Bonjour, votre demande de permis de construire est enregistrée.")
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            client.send_message(mail)
        [kept] = server.messages()
        assert kept["Subject"] == "Votre dossier a été reçu"
        assert kept["X-RcptTo"] == "camille.martin@example.org"
        assert len(list((tmp_path / "mail" / "new").iterdir())) == 1, "one file per message, to open"
    finally:
        server.stop()
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection((server.host, server.port), timeout=1),
    ):
        pass
    again = SmtpServer(maildir=tmp_path / "mail", port=server.port).start()
    try:
        assert len(again.messages()) == 1, "the Maildir survives a restart"
    finally:
        again.stop()
