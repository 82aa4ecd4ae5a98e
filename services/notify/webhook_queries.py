"""The SQL of webhooks: subscriptions, the deliveries queued for them, and the attempts.

Claims: a delivery is sent only once claimed, and claimed only if it is the earliest pending delivery of
its case for its subscription (so a case's events go out in stream order, and a failed one holds back
its case's later ones, not other cases'), if the fold has passed every earlier stream position
(`folded_through`: with several replicas, each folding its own batch, a case's later event may commit
before an earlier one is folded, when that one's delivery does not exist yet), if it is due, and if no
lease covers it. Claiming locks the rows (`FOR UPDATE SKIP LOCKED`) and writes a lease and a claim id,
committed before anything is sent: two replicas never send the same delivery at once; a replica that dies
mid-send leaves a lease that runs out, and the delivery goes again (at least once; receivers dedupe on
`webhook-id`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

WAKE_CHANNEL = "notify_webhooks"

_COUNTS = """
SELECT s.*, s.previous_secret_until > now() AS in_rotation,
       (SELECT count(*) FROM notify.webhook_deliveries d
         WHERE d.subscription_id = s.subscription_id AND d.status = 'pending') AS pending,
       (SELECT count(*) FROM notify.webhook_deliveries d
         WHERE d.subscription_id = s.subscription_id AND d.status = 'failed') AS failed
FROM notify.webhook_subscriptions s
"""

# The filters of subscription `s` for event `e` (a row of notify.events).
_MATCHES = """
    (s.procedures IS NULL OR e.procedure = ANY (s.procedures))
    AND (s.event_types IS NULL OR e.type = ANY (s.event_types))
    AND (s.services IS NULL OR e.service = ANY (s.services))
"""


async def wake(conn: asyncpg.Connection) -> None:
    """Tell every replica's dispatcher there is work (delivered when the transaction commits)."""
    await conn.execute(f"SELECT pg_notify('{WAKE_CHANNEL}', '')")


def _count(status: str) -> int:
    """The row count of a command tag (`INSERT 0 3`, `UPDATE 2`)."""
    return int(status.rsplit(" ", 1)[-1])


# --- Subscriptions ----------------------------------------------------------------------------------


async def create(conn: asyncpg.Connection, *, values: dict[str, Any]) -> asyncpg.Record:
    await conn.execute(
        "INSERT INTO notify.webhook_subscriptions(subscription_id, url, description, procedures, event_types, "
        "services, secret, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        values["subscription_id"],
        values["url"],
        values["description"],
        values["procedures"],
        values["event_types"],
        values["services"],
        values["secret"],
        values["created_by"],
    )
    row = await get(conn, values["subscription_id"])
    assert row is not None
    return row


async def get(conn: asyncpg.Connection, subscription_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"{_COUNTS} WHERE s.subscription_id = $1", subscription_id)


async def list_all(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(await conn.fetch(f"{_COUNTS} ORDER BY s.created_at, s.subscription_id"))


async def last_attempts(
    conn: asyncpg.Connection, subscription_id: uuid.UUID, *, limit: int
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT a.*, e.type FROM notify.webhook_attempts a JOIN notify.events e USING (event_id) "
            "WHERE a.subscription_id = $1 ORDER BY a.attempt_id DESC LIMIT $2",
            subscription_id,
            limit,
        )
    )


async def set_state(
    conn: asyncpg.Connection, subscription_id: uuid.UUID, *, state: str, reason: str | None
) -> bool:
    status = await conn.execute(
        "UPDATE notify.webhook_subscriptions SET state = $2, state_reason = $3, state_changed_at = now() "
        "WHERE subscription_id = $1",
        subscription_id,
        state,
        reason,
    )
    return _count(status) == 1


async def resume(conn: asyncpg.Connection, subscription_id: uuid.UUID) -> bool:
    """Active again; its failed and pending deliveries start their schedule afresh, failed ones first of
    their case (they are the earliest)."""
    if not await set_state(conn, subscription_id, state="active", reason=None):
        return False
    await conn.execute(
        "UPDATE notify.webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now() "
        "WHERE subscription_id = $1 AND status IN ('pending', 'failed')",
        subscription_id,
    )
    await wake(conn)
    return True


async def rotate_secret(
    conn: asyncpg.Connection, subscription_id: uuid.UUID, *, secret: str, grace_seconds: float
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "UPDATE notify.webhook_subscriptions SET previous_secret = secret, secret = $2, "
        "previous_secret_until = now() + make_interval(secs => $3) WHERE subscription_id = $1 "
        "RETURNING subscription_id, secret, previous_secret_until",
        subscription_id,
        secret,
        grace_seconds,
    )


async def delete(conn: asyncpg.Connection, subscription_id: uuid.UUID) -> bool:
    status = await conn.execute(
        "DELETE FROM notify.webhook_subscriptions WHERE subscription_id = $1", subscription_id
    )
    return _count(status) == 1


async def replay(
    conn: asyncpg.Connection,
    subscription_id: uuid.UUID,
    *,
    from_stream_seq: int | None,
    from_time: datetime | None,
) -> int:
    """Queue again every event from that position or time that the subscription's filters take, delivered
    before or not. Returns how many."""
    status = await conn.execute(
        "INSERT INTO notify.webhook_deliveries(subscription_id, event_id, stream_seq, case_id) "
        "SELECT s.subscription_id, e.event_id, e.stream_seq, e.case_id "
        "FROM notify.webhook_subscriptions s JOIN notify.events e ON "
        f"{_MATCHES} WHERE s.subscription_id = $1 "
        "AND ($2::bigint IS NULL OR e.stream_seq >= $2) AND ($3::timestamptz IS NULL OR e.time >= $3) "
        "ON CONFLICT (subscription_id, event_id) DO UPDATE SET status = 'pending', attempts = 0, "
        "next_attempt_at = now(), lease_until = NULL, claim_id = NULL",
        subscription_id,
        from_stream_seq,
        from_time,
    )
    await wake(conn)
    return _count(status)


# --- Queueing ---------------------------------------------------------------------------------------

ENQUEUE = """
INSERT INTO notify.webhook_deliveries(subscription_id, event_id, stream_seq, case_id)
SELECT subscription_id, $1, $2, $3 FROM notify.webhook_subscriptions
WHERE state IN ('active', 'paused')
  AND (procedures IS NULL OR $4 = ANY (procedures))
  AND (event_types IS NULL OR $5 = ANY (event_types))
  AND (services IS NULL OR $6::text = ANY (services))
ON CONFLICT (subscription_id, event_id) DO NOTHING
"""


async def enqueue(
    conn: asyncpg.Connection,
    *,
    event_id: uuid.UUID,
    stream_seq: int,
    case_id: uuid.UUID,
    procedure: str,
    event_type: str,
    service: str | None,
) -> int:
    status = await conn.execute(ENQUEUE, event_id, stream_seq, case_id, procedure, event_type, service)
    queued = _count(status)
    if queued:
        await wake(conn)
    return queued


# --- Sending ----------------------------------------------------------------------------------------

# Each case's earliest pending delivery to each active subscription, and when it may go (its next try,
# or the end of the lease another sender holds on it).
_HEADS = """
SELECT DISTINCT ON (subscription_id, case_id) subscription_id, delivery_id, stream_seq,
       GREATEST(next_attempt_at, lease_until) AS ready_at
FROM notify.webhook_deliveries
WHERE status = 'pending'
  AND subscription_id IN (SELECT subscription_id FROM notify.webhook_subscriptions WHERE state = 'active')
ORDER BY subscription_id, case_id, stream_seq
"""


# Rows of the stream, past a position every message up to which is folded, that one pass looks at: the
# positions folded since the last pass, or since the ack floor a replica read (a batch whose ack is on its
# way). Beyond them, the ack floor read from NATS again carries the position on.
FOLDED_AHEAD_LOOKED_AT = 10_000

# The furthest position $1 + n such that every message after $1 up to it is folded (a row of notify.events,
# written in its fold's transaction) or set aside (a dead letter): numbered in order, the positions with no
# gap before them are those whose number is their distance from $1.
FOLDED_THROUGH = """
SELECT COALESCE(max(stream_seq) FILTER (WHERE stream_seq - position = $1), $1) FROM (
    SELECT stream_seq, row_number() OVER (ORDER BY stream_seq) AS position FROM (
        SELECT stream_seq FROM notify.events WHERE stream_seq > $1 AND stream_seq <= $1 + $2
        UNION
        SELECT stream_seq FROM notify.dead_letters WHERE stream_seq > $1 AND stream_seq <= $1 + $2
    ) seen
) numbered
"""


async def folded_through(conn: asyncpg.Connection, *, since: int) -> int:
    """How far past `since` (a position every message up to which is folded) the fold has got with no
    message left behind."""
    through: int = await conn.fetchval(FOLDED_THROUGH, since, FOLDED_AHEAD_LOOKED_AT)
    return through


async def ready_subscriptions(conn: asyncpg.Connection, *, folded_through: int) -> list[asyncpg.Record]:
    """Active subscriptions with a case's delivery waiting: `subscription_id`, `wait` (seconds until the
    first one may go, zero or less: now; None: each waits for the fold) and `on_fold` (whether a case's
    delivery waits for the fold to pass `folded_through`)."""
    return list(
        await conn.fetch(
            "SELECT subscription_id, "
            "EXTRACT(EPOCH FROM min(ready_at) FILTER (WHERE stream_seq <= $1) - now())::float8 AS wait, "
            "bool_or(stream_seq > $1) AS on_fold "
            f"FROM ({_HEADS}) heads GROUP BY subscription_id",
            folded_through,
        )
    )


CLAIM = """
WITH heads AS (
    SELECT DISTINCT ON (case_id) delivery_id FROM notify.webhook_deliveries
    WHERE subscription_id = $1 AND status = 'pending'
    ORDER BY case_id, stream_seq
),
due AS (
    SELECT d.delivery_id FROM notify.webhook_deliveries d JOIN heads USING (delivery_id)
    WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND d.stream_seq <= $5
      AND (d.lease_until IS NULL OR d.lease_until < now())
    ORDER BY d.stream_seq LIMIT $2
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE notify.webhook_deliveries d
SET lease_until = now() + make_interval(secs => $3), claim_id = $4, attempts = d.attempts + 1
FROM due, notify.webhook_subscriptions s, notify.events e
WHERE d.delivery_id = due.delivery_id AND s.subscription_id = d.subscription_id AND s.state = 'active'
  AND e.event_id = d.event_id
RETURNING d.delivery_id, d.claim_id, d.attempts, d.subscription_id, d.event_id, d.case_id, d.stream_seq,
          s.url, s.secret, CASE WHEN s.previous_secret_until > now() THEN s.previous_secret END AS previous,
          e.envelope
"""


async def claim(
    conn: asyncpg.Connection,
    subscription_id: uuid.UUID,
    *,
    limit: int,
    lease_seconds: float,
    folded_through: int,
) -> list[asyncpg.Record]:
    """Claim the subscription's due deliveries, each the earliest pending one of its case, of events at or
    before `folded_through` (a position every message up to which is folded)."""
    rows = await conn.fetch(CLAIM, subscription_id, limit, lease_seconds, uuid.uuid4(), folded_through)
    return sorted(rows, key=lambda row: row["stream_seq"])


async def record(
    conn: asyncpg.Connection,
    claimed: asyncpg.Record,
    *,
    attempt: dict[str, Any],
    status: str,
    retry_in: float,
    subscription_change: tuple[str, str] | None,
) -> None:
    """Write what came of a claimed delivery: the attempt always; the delivery's new status, and the
    subscription's (paused, disabled), only if the claim still holds (a replay may have come since)."""
    async with conn.transaction():
        # Locked first: a DELETE of the subscription meanwhile either waits for us or has removed it.
        if (
            await conn.fetchval(
                "SELECT 1 FROM notify.webhook_deliveries WHERE delivery_id = $1 FOR UPDATE",
                claimed["delivery_id"],
            )
            is None
        ):
            return
        await conn.execute(
            "INSERT INTO notify.webhook_attempts(delivery_id, subscription_id, event_id, case_id, stream_seq, "
            "status_code, duration_ms, error, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            claimed["delivery_id"],
            claimed["subscription_id"],
            claimed["event_id"],
            claimed["case_id"],
            claimed["stream_seq"],
            attempt["status_code"],
            attempt["duration_ms"],
            attempt["error"],
            attempt["outcome"],
        )
        held = await conn.fetchval(
            "UPDATE notify.webhook_deliveries SET status = $3, next_attempt_at = now() + "
            "make_interval(secs => $4), delivered_at = CASE WHEN $3 = 'delivered' THEN now() END, "
            "lease_until = NULL, claim_id = NULL, last_status_code = $5, last_error = $6, "
            "last_duration_ms = $7 WHERE delivery_id = $1 AND claim_id = $2 RETURNING true",
            claimed["delivery_id"],
            claimed["claim_id"],
            status,
            retry_in,
            attempt["status_code"],
            attempt["error"],
            attempt["duration_ms"],
        )
        if held and subscription_change is not None:
            state, reason = subscription_change
            await conn.execute(
                "UPDATE notify.webhook_subscriptions SET state = $2, state_reason = $3, "
                "state_changed_at = now() WHERE subscription_id = $1 AND state <> 'disabled'",
                claimed["subscription_id"],
                state,
                reason,
            )
