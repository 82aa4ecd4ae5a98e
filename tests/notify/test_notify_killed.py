"""notify killed with SIGKILL in the middle of a burst, then restarted: every citizen gets their receipt
and every event reaches the webhook receiver, and nothing arrives twice, but for what was in flight at the
kill: a message the mail server (or a delivery the receiver) accepted in the instant before notify could
record it. No sender can close that instant (SMTP and HTTP share no transaction with us); such a message is
sent again with the same Message-ID (the mail client shows it once), such a delivery with the same
`webhook-id` (the receiver dedupes on it). SMS through the file sink: exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx

from devtools import dev_issuer
from tests.builders import make_case
from tests.conftest import Env, Tokens
from tests.notify.conftest import Receiver
from tests.notify.test_citizen_messages import Smtp, sms_files
from tests.notify.test_webhooks import Start
from tests.processes import ServiceProcess, service_env
from tests.waiting import eventually, query, scalar

CASES = 80


async def test_notify_killed_mid_burst_loses_nothing_and_sends_nothing_twice(
    env: Env, issuer: Path, tmp_path: Path, receivers: Start, tokens: Tokens
) -> None:
    receiver: Receiver = await receivers()
    smtp = Smtp(maildir=tmp_path / "mail")
    smtp.start()
    variables = service_env(env.database_url, env.nats_url)
    intake = ServiceProcess("services.intake.app", env=variables, log_dir=tmp_path).start()
    notify = ServiceProcess(
        "services.notify.app",
        env={
            **variables,
            "INTAKE_INTERNAL_URL": intake.url,
            "OIDC_ISSUER": dev_issuer.DEV_ISSUER,
            "OIDC_JWKS_FILE": str(issuer / dev_issuer.JWKS_FILE),
            "SMTP_PORT": str(smtp.port),
            "SMS_DIR": str(tmp_path / "sms"),
            "NOTIFY_POLL_SECONDS": "0.05",
            "NOTIFY_SEND_LEASE_SECONDS": "2",
            "WEBHOOK_ALLOW_PRIVATE": "loopback",
            "WEBHOOK_TIMEOUT": "1",
            "WEBHOOK_POLL_SECONDS": "0.1",
        },
        log_dir=tmp_path,
    ).start()
    try:
        async with httpx.AsyncClient(base_url=notify.url, timeout=10) as admin:
            hook = await admin.post("/v1/subscriptions", headers=tokens("admin"), json={"url": receiver.url})
            assert hook.status_code == 201, hook.text
        async with httpx.AsyncClient(base_url=intake.url, timeout=30) as client:

            async def submit(i: int) -> str:
                applicant = {"email": f"citizen-{i}@example.org", "notify_by": ["email", "sms"]}
                answer = await client.post("/v1/cases", json=make_case("acte-naissance", applicant=applicant))
                assert answer.status_code == 201, answer.text
                return str(answer.json()["case_id"])

            burst = asyncio.gather(*(submit(i) for i in range(CASES)))
            await eventually(lambda: _count(smtp), until=lambda n: n >= CASES // 4, timeout=60)
            notify.kill()  # SIGKILL, mid-send
            in_flight = await query(
                env.database_url, "SELECT message_id FROM notify.messages WHERE status = 'sending'"
            )
            hooks_in_flight = await query(
                env.database_url,
                "SELECT e.event_id FROM notify.webhook_deliveries d JOIN notify.events e USING (event_id) "
                "WHERE d.status = 'pending' AND d.lease_until > now()",
            )
            case_ids = await burst
            sent_before = len(smtp.messages())
            assert 0 < sent_before < CASES, "the kill should land in the middle of the burst"
            notify.start()

            await eventually(
                lambda: scalar(
                    env.database_url, "SELECT count(*) FROM notify.messages WHERE status = 'sent'"
                ),
                until=lambda n: n == 2 * CASES,
                timeout=90,
            )
        mails = smtp.messages()
        assert sorted(m["To"] for m in {m["Message-ID"]: m for m in mails}.values()) == sorted(
            f"citizen-{i}@example.org" for i in range(CASES)
        )  # everyone got their receipt
        twice = [mid for mid, n in Counter(m["Message-ID"] for m in mails).items() if n > 1]
        assert len(twice) <= len(in_flight) <= 1  # the sender sends one message at a time
        assert {f"<{r['message_id']}@suivi.notify>" for r in in_flight} >= set(twice)
        assert sorted(s["to"] for s in sms_files(tmp_path / "sms")) == ["+33612345678"] * CASES
        assert await scalar(
            env.database_url,
            "SELECT count(DISTINCT case_id) FROM notify.notifications WHERE kind = 'received'",
        ) == len(set(case_ids))
        # Every event of the stream (a CaseSubmitted per case: workflow does not run here) reached the receiver.
        await eventually(
            lambda: _async(len({r.headers["webhook-id"] for r in receiver.delivered()})),
            until=lambda n: n == CASES,
            timeout=60,
        )
        ids = Counter(r.headers["webhook-id"] for r in receiver.delivered())
        events = await query(env.database_url, "SELECT event_id FROM notify.events")
        assert set(ids) == {str(r["event_id"]) for r in events} and len(events) == CASES
        hooks_twice = {i for i, n in ids.items() if n > 1}
        assert hooks_twice <= {str(r["event_id"]) for r in hooks_in_flight}
        assert await scalar(env.database_url, "SELECT count(*) FROM notify.dead_letters") == 0
    finally:
        notify.stop(), intake.stop()
        smtp.stop()


async def _async(value: int) -> int:
    return value


async def _count(smtp: Smtp) -> int:
    return len(smtp.messages())
