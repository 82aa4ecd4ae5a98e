"""Every reader of the stream inherits the same guarantees from `shared.bus.PullConsumer`: a message bad in
itself is set aside durably, listed and replayed once fixed; a consumer left by an older release is brought
to this release's configuration. (Outages: tests/test_nothing_lost.py.)"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import nats
import nats.errors
import pytest
from asgi_lifespan import LifespanManager
from nats.js.api import AckPolicy, ConsumerConfig

from shared import bus, tracking_code
from shared.events import STREAM, make_envelope, subject_for, subjects_of
from shared.events.intake import CaseSubmitted, CitizenReplied, FixChecked
from shared.settings import DEFAULT_PROCEDURES_DIR
from tests.conftest import Env, workflow_app
from tests.waiting import eventually, query, scalar

FAST = {
    "consumer_poison_attempts": 2,
    "consumer_retry_max_seconds": 0.2,
    "dead_letter_replay_poll_seconds": 0.2,
}


def _submitted_under(version: int) -> CaseSubmitted:
    """A case submitted under a version of the building permit that workflow may not know yet."""
    return CaseSubmitted(
        case_id=uuid.uuid4(),
        tracking_code_digest=tracking_code.digest(tracking_code.generate()),
        procedure="permis-construire",
        procedure_version=version,
        service="urbanisme",
        channel="web",
        language="fr",
        submitted_at=datetime.now(UTC),
        legal_deadline=datetime.now(UTC).date() + timedelta(days=60),
        first_step="received",
        facts={},
    )


async def _publish(nats_url: str, event: CaseSubmitted) -> int:
    envelope = make_envelope(event, case_id=event.case_id, procedure=event.procedure)
    nc = await nats.connect(nats_url)
    try:
        subject = subject_for(procedure=event.procedure, case_id=event.case_id, event=event)
        ack = await nc.jetstream().publish(subject, envelope.model_dump_json().encode(), stream=STREAM)
        return int(ack.seq)
    finally:
        await nc.close()


async def _deadletters(env: Env, *args: str) -> tuple[int, str]:
    """`python -m shared.deadletters ...`, as an operator runs it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared.deadletters",
        *args,
        env={**os.environ, "DATABASE_URL": env.database_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return int(proc.returncode or 0), out.decode()


async def test_a_poison_message_is_set_aside_listed_and_replayed_once_fixed(
    env: Env, issuer: Path, tmp_path: Path
) -> None:
    procedures = tmp_path / "procedures"
    shutil.copytree(DEFAULT_PROCEDURES_DIR, procedures)
    event = _submitted_under(version=2)  # no definition of version 2 is deployed yet

    async with LifespanManager(workflow_app(env, issuer, procedures_dir=procedures, **FAST)):
        seq = await _publish(env.nats_url, event)
        letters = await eventually(
            lambda: query(env.database_url, "SELECT stream_seq, reason FROM workflow.dead_letters"),
            until=lambda rows: len(rows) == 1,
        )
    assert letters[0]["stream_seq"] == seq
    assert "permis-construire v2 is not in workflow's catalogue" in letters[0]["reason"]
    assert await scalar(env.database_url, "SELECT count(*) FROM workflow.cases") == 0

    code, listing = await _deadletters(env, "list", "--service", "workflow")
    assert code == 0
    assert f"seq {seq:>8}" in listing and f"fr.suivi.case.submitted.v1 of case {event.case_id}" in listing
    assert "not in workflow's catalogue" in listing and "1 dead letter(s) of workflow" in listing

    # The fix: deploy the definition of version 2, then replay.
    v1 = (procedures / "permis-construire" / "v1.yaml").read_text()
    (procedures / "permis-construire" / "v2.yaml").write_text(v1.replace("version: 1", "version: 2", 1))
    async with LifespanManager(workflow_app(env, issuer, procedures_dir=procedures, **FAST)):
        code, said = await _deadletters(env, "replay", "--service", "workflow", "--seq", str(seq))
        assert code == 0, said
        assert f"seq {seq}: replayed" in said
        opened = await query(env.database_url, "SELECT case_id, procedure_version FROM workflow.cases")
    assert [(r["case_id"], r["procedure_version"]) for r in opened] == [(event.case_id, 2)]

    code, listing = await _deadletters(env, "list", "--service", "workflow")
    assert "0 dead letter(s) of workflow not replayed" in listing
    code, said = await _deadletters(env, "replay", "--service", "workflow")
    assert (code, said.strip()) == (0, "nothing to replay for workflow")


async def test_a_letter_that_fails_again_stays_set_aside_and_says_why(env: Env, issuer: Path) -> None:
    async with LifespanManager(workflow_app(env, issuer, **FAST)):
        seq = await _publish(env.nats_url, _submitted_under(version=7))
        await eventually(
            lambda: scalar(env.database_url, "SELECT count(*) FROM workflow.dead_letters"),
            until=lambda n: n == 1,
        )
        code, said = await _deadletters(env, "replay", "--service", "workflow", "--wait", "20")
    assert code == 1
    assert f"seq {seq}: failed again, still set aside" in said and "v7 is not in workflow's catalogue" in said


async def test_replay_without_the_service_running_says_so(env: Env, issuer: Path) -> None:
    async with LifespanManager(workflow_app(env, issuer, **FAST)):
        seq = await _publish(env.nats_url, _submitted_under(version=7))
        await eventually(
            lambda: scalar(env.database_url, "SELECT count(*) FROM workflow.dead_letters"),
            until=lambda n: n == 1,
        )
    code, said = await _deadletters(env, "replay", "--service", "workflow", "--wait", "1")
    assert code == 1 and f"seq {seq}: not replayed yet: is the service running?" in said
    code, said = await _deadletters(env, "list", "--service", "stats")
    assert code == 2 and "stats keeps no dead letters in this database" in said


async def test_a_consumer_left_by_an_older_release_gets_this_releases_configuration(
    env: Env, issuer: Path
) -> None:
    nc = await nats.connect(env.nats_url)
    js = nc.jetstream()
    try:
        await bus.ensure_stream(js)
        # As an older release created it: one filter only, and JetStream giving up after 12 deliveries.
        await js.add_consumer(
            STREAM,
            ConsumerConfig(
                name="workflow",
                durable_name="workflow",
                filter_subject="case.*.*.submitted",
                ack_policy=AckPolicy.EXPLICIT,
                max_deliver=12,
            ),
        )
        async with LifespanManager(workflow_app(env, issuer)):
            info = await eventually(
                lambda: js.consumer_info(STREAM, "workflow"), until=lambda i: i.config.max_deliver == -1
            )
    finally:
        await nc.close()
    assert set(info.config.filter_subjects or []) == set(
        subjects_of(CaseSubmitted, CitizenReplied, FixChecked)
    )
    assert info.config.max_deliver == -1


@pytest.mark.parametrize(
    ("failure", "transient"),
    [
        (ConnectionRefusedError("PostgreSQL is not listening"), True),
        (asyncpg.CannotConnectNowError("the database system is starting up"), True),
        (asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"), True),
        (asyncpg.DeadlockDetectedError("deadlock detected"), True),
        (asyncpg.QueryCanceledError("canceling statement due to statement timeout"), True),
        (TimeoutError(), True),
        (nats.errors.ConnectionClosedError(), True),
        (httpx.ConnectError("intake is unreachable"), True),
        (bus.Transient("the SMTP server is away"), True),
        (LookupError("procedure permis-construire v9 is not in workflow's catalogue"), False),
        (asyncpg.UniqueViolationError("duplicate key"), False),
        (ValueError("badly formed hexadecimal UUID string"), False),
        (KeyError("step"), False),
    ],
)
def test_only_a_failure_of_a_dependency_counts_as_transient(failure: Exception, transient: bool) -> None:
    assert bus.is_transient(failure) is transient
