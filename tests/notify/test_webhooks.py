"""The city's other systems subscribe to case events: signed webhooks (Standard Webhooks) to a real HTTP
receiver, at least once and in order per case; a slow or dead target holds back only itself; retries
run out into a visible pause; replays, secret rotation, 410 Gone; and no webhook to a private address."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import ssl
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.notify import webhook_http, webhook_queries, webhook_targets
from shared.events import STREAM
from tests.builders import make_case
from tests.conftest import Env, Tokens
from tests.notify.conftest import Receiver, notify_client, notify_settings
from tests.waiting import eventually, query, scalar
from tests.workflow.test_agents import act, open_case

SUBMITTED = "fr.suivi.case.submitted.v1"
OPENED = "fr.suivi.case.opened.v1"
STEP_CHANGED = "fr.suivi.case.step-changed.v1"
Start = Callable[..., Any]


# --- Helpers ----------------------------------------------------------------------------------------


async def subscribe(notify: httpx.AsyncClient, tokens: Tokens, url: str, **filters: Any) -> dict[str, Any]:
    answer = await notify.post("/v1/subscriptions", headers=tokens("admin"), json={"url": url, **filters})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def subscription(notify: httpx.AsyncClient, tokens: Tokens, subscription_id: str) -> dict[str, Any]:
    answer = await notify.get(f"/v1/subscriptions/{subscription_id}", headers=tokens("admin"))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def until(condition: Callable[[], bool], *, timeout: float = 15) -> None:
    async def probe() -> bool:
        return condition()

    assert await eventually(probe, until=bool, timeout=timeout), "the condition did not come true in time"


async def delivered(receiver: Receiver, count: int, *, timeout: float = 15) -> list[dict[str, Any]]:
    """The events the receiver accepted, once there are at least `count`."""
    await until(lambda: len(receiver.delivered()) >= count, timeout=timeout)
    return [r.event for r in receiver.delivered()]


async def state_becomes(
    notify: httpx.AsyncClient, tokens: Tokens, subscription_id: str, state: str
) -> dict[str, Any]:
    found = await eventually(
        lambda: subscription(notify, tokens, subscription_id), until=lambda s: s["state"] == state
    )
    assert found["state"] == state, found
    return found


def verified(receiver: Receiver, secret: str) -> list[dict[str, Any]]:
    """The events the receiver accepted, each checked against its signature with `secret`."""
    return [Webhook(secret).verify(r.body, r.headers) for r in receiver.delivered()]


async def report(intake: httpx.AsyncClient) -> str:
    """A citizen reports a broken street light; the case's id."""
    answer = await intake.post("/v1/cases", json=make_case("signalement-voirie"))
    assert answer.status_code == 201, answer.text
    return str(answer.json()["case_id"])


async def decide_a_street_light_report(
    intake: httpx.AsyncClient, workflow: httpx.AsyncClient, tokens: Tokens
) -> dict[str, Any]:
    """A citizen's report of a broken street light, triaged then fixed at once by an agent."""
    case = await open_case(intake, workflow, tokens, "signalement-voirie")
    version = case["version"]
    for action in ("triage", "fix-at-once"):
        answer = await act(workflow, tokens("agent", "voirie"), case, action, version)
        assert answer.status_code == 200, answer.text
        version = answer.json()["version"]
    return case


async def stream_positions(env: Env) -> dict[str, int]:
    rows = await query(env.database_url, "SELECT event_id, stream_seq FROM notify.events")
    return {str(row["event_id"]): row["stream_seq"] for row in rows}


def in_order_per_case(events: list[dict[str, Any]], positions: dict[str, int]) -> bool:
    by_case: dict[str, list[int]] = {}
    for event in events:
        by_case.setdefault(event["subject"], []).append(positions[event["id"]])
    return all(seqs == sorted(seqs) for seqs in by_case.values())


async def triage(workflow: httpx.AsyncClient, tokens: Tokens, case: dict[str, Any]) -> None:
    answer = await act(workflow, tokens("agent", "voirie"), case, "triage", case["version"])
    assert answer.status_code == 200, answer.text


async def of_case(receiver: Receiver, case: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of `case` the receiver accepted, in the order they came."""
    return [r.event for r in receiver.delivered() if r.event["subject"] == case["case_id"]]


@asynccontextmanager
async def folds_wait_on(env: Env, subscription_id: str) -> AsyncIterator[None]:
    """While it lasts, notify's fold of an event the subscription takes waits (its row is locked, and the
    fold's delivery refers to it), as a replica's fold held up by a slow statement or a pause would."""
    conn = await asyncpg.connect(env.database_url)
    try:
        async with conn.transaction():
            await conn.execute(
                "SELECT 1 FROM notify.webhook_subscriptions WHERE subscription_id = $1 FOR UPDATE",
                uuid.UUID(subscription_id),
            )
            yield
    finally:
        await conn.close()


async def a_fold_waits(env: Env) -> None:
    waiting = await eventually(
        lambda: query(
            env.database_url,
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        ),
        until=bool,
    )
    assert waiting, "no fold came to wait"


async def folded(env: Env, case: dict[str, Any], event_type: str) -> None:
    """Once notify has folded (and committed) an event of `event_type` of `case`."""
    rows = await eventually(
        lambda: query(
            env.database_url,
            "SELECT 1 FROM notify.events WHERE case_id = $1 AND type = $2",
            uuid.UUID(case["case_id"]),
            event_type,
        ),
        until=bool,
    )
    assert rows, f"notify did not fold the {event_type} of case {case['case_id']}"


# --- Deliveries -------------------------------------------------------------------------------------


async def test_a_case_from_submission_to_decision_is_delivered_in_order_signed(
    env: Env,
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    notify: httpx.AsyncClient,
    tokens: Tokens,
    receivers: Start,
) -> None:
    receiver = await receivers()
    created = await subscribe(notify, tokens, receiver.url)
    assert created["secret"].startswith("whsec_") and created["state"] == "active"
    assert len(base64.b64decode(created["secret"].removeprefix("whsec_"))) >= 24

    case = await decide_a_street_light_report(intake, workflow, tokens)
    events = await delivered(receiver, 4)
    assert [e["type"] for e in events] == [SUBMITTED, OPENED, STEP_CHANGED, STEP_CHANGED]
    assert {e["subject"] for e in events} == {case["case_id"]}
    assert events[-1]["data"]["to_step"] == "done" and events[-1]["data"]["outcome"] == "accepted"
    assert verified(receiver, created["secret"]) == events
    for request in receiver.delivered():
        assert request.headers["webhook-id"] == request.event["id"]
        assert request.headers["content-type"].startswith("application/cloudevents+json")
        assert request.path == "/hooks"
    assert len(receiver.requests) == 4
    assert "applicant" not in str(events) and "camille" not in str(events).lower()

    # The body is the CloudEvent exactly as on the bus, byte for byte.
    positions = await stream_positions(env)
    nc = await nats.connect(env.nats_url)
    try:
        for request in receiver.delivered():
            message = await nc.jetstream().get_msg(STREAM, positions[request.headers["webhook-id"]])
            assert message.data == request.body
    finally:
        await nc.close()
    shown = await subscription(notify, tokens, created["id"])
    assert [a["status_code"] for a in shown["last_attempts"]] == [204] * 4
    assert "secret" not in shown and shown["pending"] == 0


async def test_each_subscription_gets_only_what_its_filters_take(
    env: Env,
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    notify: httpx.AsyncClient,
    tokens: Tokens,
    receivers: Start,
) -> None:
    every, street, submissions, planning = [await receivers() for _ in range(4)]
    await subscribe(notify, tokens, every.url)
    await subscribe(notify, tokens, street.url, procedures=["signalement-voirie"])
    await subscribe(notify, tokens, submissions.url, event_types=[SUBMITTED])
    await subscribe(notify, tokens, planning.url, services=["urbanisme"])

    report_ = await open_case(intake, workflow, tokens, "signalement-voirie")
    permit = await open_case(intake, workflow, tokens, "permis-construire")
    await delivered(every, 4)
    await delivered(street, 2)
    await delivered(submissions, 2)
    await delivered(planning, 2)

    def seen(receiver: Receiver) -> Counter[tuple[str, str]]:
        return Counter((r.event["subject"], r.event["type"]) for r in receiver.requests)

    both = {report_["case_id"]: "report", permit["case_id"]: "permit"}
    assert Counter({(both[c], t): n for (c, t), n in seen(every).items()}) == Counter(
        {("report", SUBMITTED): 1, ("report", OPENED): 1, ("permit", SUBMITTED): 1, ("permit", OPENED): 1}
    )
    assert seen(street) == Counter({(report_["case_id"], SUBMITTED): 1, (report_["case_id"], OPENED): 1})
    assert seen(submissions) == Counter(
        {(report_["case_id"], SUBMITTED): 1, (permit["case_id"], SUBMITTED): 1}
    )
    assert seen(planning) == Counter({(permit["case_id"], SUBMITTED): 1, (permit["case_id"], OPENED): 1})
    # Nothing else is on its way: the fold queued every delivery when it folded the events above.
    queued = await query(
        env.database_url,
        "SELECT s.url, count(*) AS n FROM notify.webhook_deliveries d "
        "JOIN notify.webhook_subscriptions s USING (subscription_id) GROUP BY s.url",
    )
    assert {row["url"]: row["n"] for row in queued} == {
        every.url: 4,
        street.url: 2,
        submissions.url: 2,
        planning.url: 2,
    }


async def test_a_receiver_down_for_a_while_then_up_gets_every_event_once_in_order_per_case(
    env: Env,
    issuer: Path,
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    tokens: Tokens,
    receivers: Start,
) -> None:
    settings = notify_settings(env, issuer, webhook_retry_schedule=(0.3, 0.5, 1, 1, 2, 2, 5, 10))
    async with notify_client(settings, intake) as notify:
        receiver = await receivers()
        created = await subscribe(notify, tokens, receiver.url)
        await receiver.stop()
        cases = [await open_case(intake, workflow, tokens, "signalement-voirie") for _ in range(3)]
        for case in cases:
            answer = await act(workflow, tokens("agent", "voirie"), case, "triage", case["version"])
            assert answer.status_code == 200, answer.text
        # Tries fail (connection refused) for a while, then the receiver is back.
        await eventually(
            lambda: subscription(notify, tokens, created["id"]),
            until=lambda s: sum(1 for a in s["last_attempts"] if a["error"]) >= 6,
        )
        assert not receiver.requests
        await receiver.start()

        events = await delivered(receiver, 9, timeout=20)
        assert Counter(e["id"] for e in events) == Counter({e["id"]: 1 for e in events})
        assert len(events) == 9 and {e["subject"] for e in events} == {c["case_id"] for c in cases}
        assert in_order_per_case(events, await stream_positions(env))
        assert verified(receiver, created["secret"]) == events
        assert (await subscription(notify, tokens, created["id"]))["state"] == "active"


async def test_two_notify_replicas_send_each_delivery_once_in_order_per_case(
    env: Env,
    issuer: Path,
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    tokens: Tokens,
    receivers: Start,
) -> None:
    """Two replicas fold batches of the stream side by side, so one may commit a case's later event while
    the other is still folding its earlier one: the later one's webhook waits for it."""
    receiver, archive = await receivers(delay=0.05), await receivers()
    settings = notify_settings(env, issuer)
    async with notify_client(settings, intake) as one, notify_client(settings, intake):
        created = await subscribe(one, tokens, receiver.url)
        openings = await subscribe(one, tokens, archive.url, event_types=[OPENED])
        cases = await asyncio.gather(
            *(open_case(intake, workflow, tokens, "signalement-voirie") for _ in range(4))
        )
        for case in cases:
            await triage(workflow, tokens, case)
        await delivered(receiver, 12, timeout=20)

        # The fold of the next case's opening is held up (as by a slow statement) while the other replica
        # folds the case's triage and commits it.
        async with folds_wait_on(env, openings["id"]):
            held = await open_case(intake, workflow, tokens, "signalement-voirie")
            await a_fold_waits(env)
            await triage(workflow, tokens, held)
            await folded(env, held, STEP_CHANGED)
            # Woken by that commit, and polling every 0.2 s, a dispatcher would have sent the triage by now.
            early = await eventually(
                lambda: of_case(receiver, held), until=lambda events: len(events) > 1, timeout=1
            )
            assert [e["type"] for e in early] == [SUBMITTED], "the triage went before the opening"

        events = await delivered(receiver, 15, timeout=20)
        await delivered(archive, 5)
        await asyncio.sleep(0.5)  # time for a second copy to arrive, were one sent
        assert len(receiver.requests) == 15 and len(archive.requests) == 5
        assert Counter(e["id"] for e in events) == Counter({e["id"]: 1 for e in events})
        assert verified(receiver, created["secret"]) == events
        assert [e["type"] for e in await of_case(receiver, held)] == [SUBMITTED, OPENED, STEP_CHANGED]
        assert in_order_per_case(events, await stream_positions(env))


async def test_a_message_set_aside_as_a_dead_letter_does_not_hold_back_the_webhooks_after_it(
    env: Env,
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    notify: httpx.AsyncClient,
    tokens: Tokens,
    receivers: Start,
) -> None:
    receiver = await receivers()
    await subscribe(notify, tokens, receiver.url)
    nc = await nats.connect(env.nats_url)
    try:
        await nc.jetstream().publish("case.signalement-voirie.garbled.submitted", b"not an event")
    finally:
        await nc.close()

    case = await open_case(intake, workflow, tokens, "signalement-voirie")
    events = await delivered(receiver, 2, timeout=5)
    assert [(e["subject"], e["type"]) for e in events] == [
        (case["case_id"], SUBMITTED),
        (case["case_id"], OPENED),
    ]
    assert await scalar(env.database_url, "SELECT count(*) FROM notify.dead_letters") == 1


async def test_the_fold_has_got_as_far_as_its_first_gap(env: Env, notify: httpx.AsyncClient) -> None:
    """A delivery waits until every message before it is folded: past a position known folded (the ack
    floor), as far as the events folded and the dead letters go with no gap."""
    conn = await asyncpg.connect(env.database_url)
    try:
        for seq in (1, 2, 3, 5, 6, 8):
            await conn.execute(
                "INSERT INTO notify.events(event_id, stream_seq, case_id, procedure, type, time, envelope) "
                "VALUES ($1, $2, $3, 'signalement-voirie', $4, now(), '{}')",
                uuid.uuid4(),
                seq,
                uuid.uuid4(),
                SUBMITTED,
            )
        assert await webhook_queries.folded_through(conn, since=0) == 3  # seq 4 is not folded yet
        await conn.execute(
            "INSERT INTO notify.dead_letters(stream_seq, subject, consumer, reason, body) "
            "VALUES (4, 'case.x.y.z', 'notify', 'malformed', '')"
        )
        assert await webhook_queries.folded_through(conn, since=0) == 6
        assert await webhook_queries.folded_through(conn, since=7) == 8  # the ack floor passed seq 7
        assert await webhook_queries.folded_through(conn, since=8) == 8
    finally:
        await conn.close()


async def test_a_slow_receiver_does_not_hold_back_a_fast_one(
    env: Env,
    issuer: Path,
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    tokens: Tokens,
    receivers: Start,
) -> None:
    async with notify_client(notify_settings(env, issuer, webhook_timeout_seconds=15), intake) as notify:
        slow, fast = await receivers(delay=10), await receivers()
        await subscribe(notify, tokens, slow.url)
        await subscribe(notify, tokens, fast.url)
        for _ in range(2):
            await open_case(intake, workflow, tokens, "signalement-voirie")

        await delivered(fast, 4, timeout=8)
        # Every fast delivery arrived while the slow receiver was still on its first answers.
        assert slow.requests and slow.answered() <= 1


async def test_used_up_retries_pause_the_subscription_visibly_and_resume_sends_in_order(
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    notify: httpx.AsyncClient,
    tokens: Tokens,
    receivers: Start,
) -> None:
    receiver = await receivers(answer=500)
    created = await subscribe(notify, tokens, receiver.url)
    case = await open_case(intake, workflow, tokens, "signalement-voirie")

    paused = await state_becomes(notify, tokens, created["id"], "paused")
    assert "retries used up" in paused["state_reason"] and "HTTP 500" in paused["state_reason"]
    attempts = paused["last_attempts"]
    # The first event was tried 1 + 3 times (the test schedule); the case's next one waited behind it.
    assert [(a["event_type"], a["status_code"]) for a in attempts] == [(SUBMITTED, 500)] * 4
    assert [a["outcome"] for a in attempts] == ["exhausted", "retry", "retry", "retry"]
    assert all(a["duration_ms"] >= 0 and a["error"] == "HTTP 500" for a in attempts)
    assert (paused["failed"], paused["pending"]) == (1, 1)
    listed = (await notify.get("/v1/subscriptions", headers=tokens("admin"))).json()
    assert [(s["id"], s["state"]) for s in listed] == [(created["id"], "paused")]

    receiver.answer = 204
    resumed = await notify.post(f"/v1/subscriptions/{created['id']}/resume", headers=tokens("admin"))
    assert resumed.status_code == 200 and resumed.json()["state"] == "active"
    events = await delivered(receiver, 2)
    assert [(e["subject"], e["type"]) for e in events] == [
        (case["case_id"], SUBMITTED),
        (case["case_id"], OPENED),
    ]


async def test_a_paused_subscription_keeps_its_deliveries_for_resume(
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    notify: httpx.AsyncClient,
    tokens: Tokens,
    receivers: Start,
) -> None:
    receiver = await receivers()
    created = await subscribe(notify, tokens, receiver.url)
    paused = await notify.post(f"/v1/subscriptions/{created['id']}/pause", headers=tokens("admin"))
    assert paused.json()["state"] == "paused" and "admin" in paused.json()["state_reason"]

    await open_case(intake, workflow, tokens, "signalement-voirie")
    await eventually(lambda: subscription(notify, tokens, created["id"]), until=lambda s: s["pending"] == 2)
    assert not receiver.requests
    await notify.post(f"/v1/subscriptions/{created['id']}/resume", headers=tokens("admin"))
    assert [e["type"] for e in await delivered(receiver, 2)] == [SUBMITTED, OPENED]


async def test_a_throttling_answer_is_tried_again_no_sooner_than_its_retry_after(
    intake: httpx.AsyncClient, notify: httpx.AsyncClient, tokens: Tokens, receivers: Start
) -> None:
    def throttle_first(request: Any) -> int | tuple[int, dict[str, str]]:
        return (429, {"Retry-After": "2"}) if len(receiver.requests) == 1 else 204

    receiver = await receivers(answer=throttle_first)
    await subscribe(notify, tokens, receiver.url, event_types=[SUBMITTED])
    await report(intake)
    await delivered(receiver, 1)
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert second.at - first.at >= 1.9  # the schedule alone would have tried again after 0.2 s


async def test_a_replay_sends_again_from_a_stream_position_or_a_time(
    env: Env,
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    notify: httpx.AsyncClient,
    tokens: Tokens,
    receivers: Start,
) -> None:
    receiver = await receivers()
    created = await subscribe(notify, tokens, receiver.url)
    await decide_a_street_light_report(intake, workflow, tokens)
    first = await delivered(receiver, 4)
    positions = await stream_positions(env)
    replays = f"/v1/subscriptions/{created['id']}/replay"

    answer = await notify.post(
        replays, headers=tokens("admin"), json={"from_stream_seq": positions[first[2]["id"]]}
    )
    assert answer.status_code == 202 and answer.json()["queued"] == 2
    again = await delivered(receiver, 6)
    assert [e["id"] for e in again[4:]] == [e["id"] for e in first[2:]]

    answer = await notify.post(replays, headers=tokens("admin"), json={"from_time": first[0]["time"]})
    assert answer.status_code == 202 and answer.json()["queued"] == 4
    assert [e["id"] for e in (await delivered(receiver, 10))[6:]] == [e["id"] for e in first]

    for wrong in ({}, {"from_stream_seq": 1, "from_time": first[0]["time"]}):
        refused = await notify.post(replays, headers=tokens("admin"), json=wrong)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "from_stream_seq"


async def test_after_a_secret_rotation_both_secrets_verify_during_the_grace_period(
    intake: httpx.AsyncClient,
    workflow: httpx.AsyncClient,
    notify: httpx.AsyncClient,
    tokens: Tokens,
    receivers: Start,
) -> None:
    receiver = await receivers()
    created = await subscribe(notify, tokens, receiver.url)
    rotations = f"/v1/subscriptions/{created['id']}/rotate-secret"
    rotated = (await notify.post(rotations, headers=tokens("admin"))).json()
    assert rotated["secret"] != created["secret"] and rotated["secret"].startswith("whsec_")

    case = await open_case(intake, workflow, tokens, "signalement-voirie")
    events = await delivered(receiver, 2)
    assert verified(receiver, created["secret"]) == verified(receiver, rotated["secret"]) == events
    assert all(len(r.headers["webhook-signature"].split(" ")) == 2 for r in receiver.delivered())
    shown = await subscription(notify, tokens, created["id"])
    assert shown["previous_secret_until"] is not None

    # Rotated again with no grace: only the newest secret signs.
    newest = (await notify.post(rotations, headers=tokens("admin"), json={"grace_seconds": 0})).json()
    answer = await act(workflow, tokens("agent", "voirie"), case, "triage", case["version"])
    assert answer.status_code == 200, answer.text
    await delivered(receiver, 3)
    last = receiver.delivered()[-1]
    assert Webhook(newest["secret"]).verify(last.body, last.headers)["type"] == STEP_CHANGED
    with pytest.raises(WebhookVerificationError):
        Webhook(rotated["secret"]).verify(last.body, last.headers)


async def test_a_target_answering_410_gone_disables_its_subscription(
    env: Env, intake: httpx.AsyncClient, notify: httpx.AsyncClient, tokens: Tokens, receivers: Start
) -> None:
    receiver = await receivers(answer=410)
    created = await subscribe(notify, tokens, receiver.url)
    await report(intake)
    disabled = await state_becomes(notify, tokens, created["id"], "disabled")
    assert "410" in disabled["state_reason"] and disabled["last_attempts"][0]["outcome"] == "gone"

    await report(intake)
    folded = await eventually(
        lambda: query(env.database_url, "SELECT 1 FROM notify.events WHERE type = $1", SUBMITTED),
        until=lambda rows: len(rows) == 2,
    )
    assert len(folded) == 2
    assert len(receiver.requests) == 1
    assert (await subscription(notify, tokens, created["id"]))["pending"] == 1  # the first, kept for a resume


# --- Managing subscriptions ---------------------------------------------------------------------------


async def test_only_admins_manage_subscriptions_and_the_secret_is_shown_once(
    notify: httpx.AsyncClient, tokens: Tokens, receivers: Start
) -> None:
    receiver = await receivers()
    body = {"url": receiver.url}
    assert (await notify.post("/v1/subscriptions", json=body)).status_code == 401
    refused = await notify.post("/v1/subscriptions", json=body, headers=tokens("supervisor", "voirie"))
    assert refused.status_code == 403 and "admin" in refused.json()["detail"]

    created = await subscribe(notify, tokens, receiver.url, procedures=["signalement-voirie"])
    listed = (await notify.get("/v1/subscriptions", headers=tokens("admin"))).json()
    assert [s["id"] for s in listed] == [created["id"]] and "secret" not in listed[0]
    assert listed[0]["procedures"] == ["signalement-voirie"] and listed[0]["event_types"] is None

    gone = await notify.delete(f"/v1/subscriptions/{created['id']}", headers=tokens("admin"))
    assert gone.status_code == 204
    missing = await notify.get(f"/v1/subscriptions/{created['id']}", headers=tokens("admin"))
    assert missing.status_code == 404 and created["id"] in missing.json()["detail"]


async def test_bad_subscription_input_is_a_422_naming_it(notify: httpx.AsyncClient, tokens: Tokens) -> None:
    cases = [
        ({"url": "ftp://sig.ville.example/hooks"}, "url", "ftp"),
        ({"url": "not an address"}, "url", "not an address"),
        ({"url": "http://user:pw@127.0.0.1/"}, "url", "password"),
        (
            {"url": "http://127.0.0.1/", "event_types": ["fr.suivi.case.exploded.v1"]},
            "event_types.0",
            "exploded",
        ),
        (
            {"url": "http://127.0.0.1/", "procedures": ["permis-de-chasse"]},
            "procedures.0",
            "permis-de-chasse",
        ),
        ({"url": "http://127.0.0.1/", "services": ["voirie", "piscines"]}, "services.1", "piscines"),
    ]
    for body, field, named in cases:
        answer = await notify.post(
            "/v1/subscriptions", json=body, headers=tokens("admin"), params={"lang": "en"}
        )
        assert answer.status_code == 422, (body, answer.text)
        errors = answer.json()["errors"]
        assert [e["field"] for e in errors] == [field] and named in errors[0]["message"], errors


# --- No webhook to a private address ------------------------------------------------------------------

PRIVATE_TARGETS = [
    ("http://127.0.0.1:8080/hooks", "127.0.0.1"),
    ("http://10.0.0.1/hooks", "10.0.0.1"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
    ("http://[::1]:8080/hooks", "::1"),
    ("http://[::ffff:127.0.0.1]/hooks", "::ffff:127.0.0.1"),
    ("http://[fd00::1]/hooks", "fd00::1"),
    ("http://0.0.0.0/hooks", "0.0.0.0"),
    ("http://100.64.0.1/hooks", "100.64.0.1"),
]


async def test_subscriptions_to_private_addresses_are_refused_naming_the_address(
    env: Env, issuer: Path, intake: httpx.AsyncClient, tokens: Tokens
) -> None:
    async with notify_client(notify_settings(env, issuer, webhook_allow_private=()), intake) as notify:
        for url, address in [*PRIVATE_TARGETS, ("http://localhost:8080/hooks", "localhost")]:
            answer = await notify.post(
                "/v1/subscriptions", json={"url": url}, headers=tokens("admin"), params={"lang": "en"}
            )
            assert answer.status_code == 422, (url, answer.text)
            message = answer.json()["errors"][0]["message"]
            assert address in message and "public addresses" in message, message
        assert (await notify.get("/v1/subscriptions", headers=tokens("admin"))).json() == []


async def test_a_name_resolving_to_a_private_address_at_connection_time_gets_nothing(
    intake: httpx.AsyncClient,
    notify: httpx.AsyncClient,
    tokens: Tokens,
    receivers: Start,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dns = {"hooks.sig.example": "127.0.0.1"}

    async def resolve(host: str, port: int) -> list[webhook_targets.IPAddress]:
        return [ipaddress.ip_address(dns[host])]

    monkeypatch.setattr(webhook_targets, "resolve", resolve)
    receiver = await receivers()
    url = f"http://hooks.sig.example:{receiver.port}/hooks"
    created = await subscribe(notify, tokens, url, event_types=[SUBMITTED])
    await report(intake)
    await delivered(receiver, 1)
    # The request went to the address that was checked, for the name that was subscribed.
    assert receiver.requests[0].headers["host"] == f"hooks.sig.example:{receiver.port}"

    dns["hooks.sig.example"] = "10.0.0.1"  # the name now points inside the city's network
    await report(intake)
    shown = await eventually(
        lambda: subscription(notify, tokens, created["id"]),
        until=lambda s: s["last_attempts"][0]["error"] is not None,
    )
    attempt = shown["last_attempts"][0]
    assert attempt["status_code"] is None and "10.0.0.1" in attempt["error"]
    assert len(receiver.requests) == 1


def tls_contexts(name: str, directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server's TLS context with a self-signed certificate for `name`, and a client's that trusts it."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    (directory / "cert.pem").write_bytes(pem)
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return server, ssl.create_default_context(cadata=pem.decode())


async def test_an_https_target_is_reached_at_its_checked_address_under_its_own_name(
    intake: httpx.AsyncClient,
    notify: httpx.AsyncClient,
    tokens: Tokens,
    receivers: Start,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    server_tls, client_tls = tls_contexts("hooks.sig.example", tmp_path)

    async def resolve(host: str, port: int) -> list[webhook_targets.IPAddress]:
        return [ipaddress.ip_address("127.0.0.1")]

    monkeypatch.setattr(webhook_targets, "resolve", resolve)
    monkeypatch.setattr(webhook_http, "TLS_VERIFY", client_tls)
    receiver = await receivers(tls=server_tls)
    await subscribe(
        notify, tokens, f"https://hooks.sig.example:{receiver.port}/hooks", event_types=[SUBMITTED]
    )
    # The same address under another name: its certificate is not that name's, nothing is sent.
    other = await subscribe(
        notify, tokens, f"https://other.sig.example:{receiver.port}/hooks", event_types=[SUBMITTED]
    )
    await report(intake)

    await delivered(receiver, 1)
    assert receiver.requests[0].headers["host"] == f"hooks.sig.example:{receiver.port}"
    assert "hooks.sig.example" in receiver.sni
    shown = await eventually(
        lambda: subscription(notify, tokens, other["id"]), until=lambda s: bool(s["last_attempts"])
    )
    assert "certificate" in shown["last_attempts"][0]["error"].lower()
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    ("address", "allowed", "refused"),
    [
        ("93.184.215.14", (), None),
        ("2606:4700::1111", (), None),
        ("127.0.0.1", (), "loopback"),
        ("127.0.0.1", ("loopback",), None),
        ("::1", ("loopback",), None),
        ("::ffff:127.0.0.1", ("loopback",), None),
        ("::ffff:10.1.2.3", ("loopback",), "private"),
        ("10.1.2.3", ("10.1.0.0/16",), None),
        ("10.2.0.1", ("10.1.0.0/16",), "private"),
        ("192.168.1.1", ("private",), None),
        ("169.254.169.254", ("private",), "link-local"),
        ("fe80::1", (), "link-local"),
        ("224.0.0.251", (), "multicast"),
        ("ff02::1", (), "multicast"),
        ("240.0.0.1", (), "reserved"),
        ("100::1", (), "reserved"),
        ("::", (), "unspecified"),
        ("2002:a00:1::1", (), "private"),  # 6to4 carrying 10.0.0.1
        ("64:ff9b::a9fe:a9fe", (), "reserved"),  # NAT64 carrying 169.254.169.254
    ],
)
def test_which_addresses_a_webhook_may_go_to(
    address: str, allowed: tuple[str, ...], refused: str | None
) -> None:
    allowances = webhook_targets.parse_allowances(allowed)
    assert webhook_targets.refusal(ipaddress.ip_address(address), allowances) == refused


def test_an_allowance_that_is_neither_a_keyword_nor_a_network_is_named() -> None:
    with pytest.raises(ValueError, match="everything"):
        webhook_targets.parse_allowances(["loopback", "everything"])
