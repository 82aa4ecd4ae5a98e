"""Sending the citizens' messages, from the rows the fold wrote (`consumers.py`).

Two passes, again and again:
1. a pending notification learns how to reach the citizen (intake's internal API: channels chosen,
   language) and becomes one message per channel; a case whose citizen stopped its messages gets none;
2. due messages are claimed in a batch (a lease and a claim id, committed); each is then marked `sending`
   (its try counted, committed before anything goes out) if the claim still holds, its address is
   fetched from intake at that moment (never stored), and it is sent; the outcome is recorded at once:
   `sent`, `temporary-failure` (tried again on the schedule) or `permanent-failure` with the reason.

Never twice, never lost: a notification exists once per event (its id is derived from the event's), a
message once per notification and channel, and only a claimed message is sent. If notify is killed
between the provider's acceptance and the record of it (a moment no sender can close: SMTP has no
transaction with us), the lease runs out and the message goes again with the same Message-ID (the SMS
file sink: the same file), which a mail client shows once.

A case's messages go out in order: one waits while an earlier message of its case on its channel is not
sent yet.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from services.notify import channels, content, domain
from services.notify.domain import Kind, Status
from services.notify.settings import NotifySettings
from shared.bus import is_transient, raise_if_cancelling
from shared.procedures import Catalogue
from shared.telemetry import meter

log = logging.getLogger(__name__)

messages_counter = meter.create_counter(
    "suivi.notify.messages", unit="{message}", description="Citizens' messages tried, by channel and outcome"
)


class IntakeUnavailable(Exception):
    """intake's internal API did not answer: try again later."""


@dataclass(frozen=True)
class Contact:
    tracking_code: str
    language: str
    notify_by: tuple[str, ...]
    email: str | None
    phone: str | None


def stop_token(case_id: uuid.UUID, secret: str) -> str:
    """The part of the link in every message that stops the case's messages: the case id, signed."""
    mac = hmac.new(secret.encode(), case_id.bytes, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(case_id.bytes + mac).decode().rstrip("=")


def case_of_stop_token(token: str, secret: str) -> uuid.UUID | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError:
        return None
    if len(raw) != 32:
        return None
    case_id = uuid.UUID(bytes=raw[:16])
    return case_id if hmac.compare_digest(stop_token(case_id, secret), token) else None


class Sender:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        http: httpx.AsyncClient,
        intake: Callable[[], httpx.AsyncClient],
        settings: NotifySettings,
        catalogue: Catalogue,
    ) -> None:
        """`http`: for the SMS provider; `intake()`: the client for intake's internal API (read at each call,
        so that tests can point it at intake's app in process)."""
        self._pool, self._intake, self._settings, self._catalogue = pool, intake, settings, catalogue
        self._email = channels.Email(settings)
        self._sms = channels.sms_provider(settings, http)

    async def run(self) -> None:
        while True:
            try:
                busy = await self.resolve_pending() + await self.send_due()
            except Exception as exc:
                raise_if_cancelling()
                level = logging.WARNING if is_transient(exc) else logging.ERROR
                log.log(level, "notify's sender failed a pass (%s); it tries again", exc, exc_info=exc)
                busy = 0
            if not busy:
                await asyncio.sleep(self._settings.send_poll_seconds)

    # 1. Notifications: how to reach the citizen

    async def resolve_pending(self) -> int:
        # A case's notifications are resolved in their events' order, one at a time: its messages are then
        # created, and sent (`send_due`), in that order, even when one waits for intake meanwhile.
        rows = await self._pool.fetch(
            "UPDATE notify.notifications SET next_attempt_at = now() + make_interval(secs => $2) "
            "WHERE notification_id IN (SELECT n.notification_id FROM notify.notifications n "
            "  WHERE n.state = 'pending' AND n.next_attempt_at <= now() "
            "  AND NOT EXISTS (SELECT 1 FROM notify.notifications e WHERE e.case_id = n.case_id "
            "    AND e.state = 'pending' AND e.stream_seq < n.stream_seq) "
            "  ORDER BY n.stream_seq, n.created_at LIMIT $1 FOR UPDATE OF n SKIP LOCKED) RETURNING *",
            self._settings.send_batch,
            self._settings.send_lease_seconds,
        )
        for row in sorted(rows, key=lambda r: (r["stream_seq"] or 0, r["created_at"])):
            await self._resolve(row)
        return len(rows)

    async def _resolve(self, row: asyncpg.Record) -> None:
        ids = {"case_id": str(row["case_id"]), "notification_id": str(row["notification_id"])}
        if await self._opted_out(row["case_id"]):
            await self._set_state(row, "opted-out")
            log.info("no message for %s: the citizen stopped this case's messages", row["kind"], extra=ids)
            return
        try:
            contact = await self.contact(row["case_id"])
        except IntakeUnavailable as exc:
            await self._retry_resolution(row, str(exc))
            return
        chosen = [c for c in (contact.notify_by if contact else ()) if _address(contact, c)]
        if contact is None or not chosen:
            await self._set_state(row, "no-contact")
            log.info("no message for %s: no channel chosen with an address", row["kind"], extra=ids)
            return
        async with self._pool.acquire() as conn, conn.transaction():
            for channel in chosen:
                await conn.execute(
                    "INSERT INTO notify.messages(message_id, notification_id, case_id, channel, language) "
                    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (notification_id, channel) DO NOTHING",
                    uuid.uuid5(row["notification_id"], channel),
                    row["notification_id"],
                    row["case_id"],
                    channel,
                    content.language_for(contact.language),
                )
            await conn.execute(
                "UPDATE notify.notifications SET state = 'resolved', resolved_at = now() "
                "WHERE notification_id = $1",
                row["notification_id"],
            )

    async def _set_state(self, row: asyncpg.Record, state: str) -> None:
        await self._pool.execute(
            "UPDATE notify.notifications SET state = $2, resolved_at = now() WHERE notification_id = $1",
            row["notification_id"],
            state,
        )

    async def _retry_resolution(self, row: asyncpg.Record, error: str) -> None:
        attempts = row["attempts"] + 1
        pause = min(self._settings.send_retry_schedule[0] * attempts, 300)
        await self._pool.execute(
            "UPDATE notify.notifications SET attempts = $2, last_error = $3, "
            "next_attempt_at = now() + make_interval(secs => $4) WHERE notification_id = $1",
            row["notification_id"],
            attempts,
            error,
            pause,
        )
        log.warning(
            "cannot learn how to reach the citizen (%s); trying again in %.0f s",
            error,
            pause,
            extra={"case_id": str(row["case_id"])},
        )

    async def _opted_out(self, case_id: uuid.UUID) -> bool:
        return bool(await self._pool.fetchval("SELECT true FROM notify.opt_outs WHERE case_id = $1", case_id))

    async def contact(self, case_id: uuid.UUID) -> Contact | None:
        """Where to write, read from intake now (None: intake has no applicant for this case)."""
        s = self._settings
        url = f"{s.intake_internal_url.rstrip('/')}/internal/v1/cases/{case_id}/contact"
        try:
            answer = await self._intake().get(
                url, headers={"Authorization": f"Bearer {s.internal_token}"}, timeout=5
            )
        except httpx.HTTPError as exc:
            raise IntakeUnavailable(f"intake is unreachable: {type(exc).__name__}") from exc
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            raise IntakeUnavailable(f"intake answered {answer.status_code}")
        body: dict[str, Any] = answer.json()
        return Contact(
            tracking_code=body["tracking_code"],
            language=body["language"],
            notify_by=tuple(body["notify_by"]),
            email=body.get("email"),
            phone=body.get("phone"),
        )

    # 2. Messages: sending

    async def send_due(self) -> int:
        """Lease a batch of due messages (so another replica leaves them), then send them one by one."""
        rows = await self._pool.fetch(
            "UPDATE notify.messages m SET lease_until = now() + make_interval(secs => $2), claim_id = $3 "
            "FROM notify.notifications n WHERE n.notification_id = m.notification_id AND m.message_id IN ("
            "  SELECT d.message_id FROM notify.messages d WHERE (d.lease_until IS NULL OR d.lease_until < now())"
            "  AND (d.status = 'sending' OR (d.status IN ('created', 'temporary-failure') "
            "    AND d.next_attempt_at <= now()))"
            "  AND NOT EXISTS (SELECT 1 FROM notify.messages e WHERE e.case_id = d.case_id "
            "    AND e.channel = d.channel AND e.created_at < d.created_at "
            "    AND e.status IN ('created', 'sending', 'temporary-failure'))"
            "  ORDER BY d.created_at LIMIT $1 FOR UPDATE OF d SKIP LOCKED) "
            "RETURNING m.*, n.kind, n.context, n.procedure, n.procedure_version",
            self._settings.send_batch,
            self._settings.send_lease_seconds,
            uuid.uuid4(),
        )
        for row in sorted(rows, key=lambda r: r["created_at"]):
            await self._send(row)
        return len(rows)

    async def _start_try(self, row: asyncpg.Record | dict[str, Any]) -> dict[str, Any] | None:
        """Mark the message `sending` and count the try, if this sender's claim on it still holds (else
        None: its lease ran out while it waited in the batch, and another sender took it)."""
        attempts = await self._pool.fetchval(
            "UPDATE notify.messages SET status = 'sending', attempts = attempts + 1, updated_at = now(), "
            "lease_until = now() + make_interval(secs => $3) "
            "WHERE message_id = $1 AND claim_id = $2 RETURNING attempts",
            row["message_id"],
            row["claim_id"],
            self._settings.send_lease_seconds,
        )
        if attempts is None:
            log.info(
                "message %s left to the sender that claimed it after this one's lease ran out",
                row["message_id"],
                extra={"case_id": str(row["case_id"]), "message_id": str(row["message_id"])},
            )
            return None
        return {**dict(row), "attempts": attempts}

    async def _send(self, claimed: asyncpg.Record | dict[str, Any]) -> None:
        row = await self._start_try(claimed)
        if row is None:
            return
        ids = {
            "case_id": str(row["case_id"]),
            "message_id": str(row["message_id"]),
            "channel": row["channel"],
        }
        if await self._opted_out(row["case_id"]):
            await self._record(
                row, channels.Failed("the citizen stopped this case's messages", permanent=True)
            )
            return
        try:
            contact = await self.contact(row["case_id"])
        except IntakeUnavailable as exc:
            await self._record(row, channels.Failed(str(exc), permanent=False))
            return
        address = _address(contact, row["channel"]) if contact else None
        procedure = self._catalogue.get(row["procedure"], row["procedure_version"])
        if contact is None or address is None or procedure is None:
            why = "the procedure definition is not deployed" if procedure is None else "no address any more"
            await self._record(row, channels.Failed(why, permanent=True))
            return
        s = self._settings
        unsubscribe = f"{s.notify_public_url.rstrip('/')}/notifications/stop/{stop_token(row['case_id'], s.link_secret)}"
        rendered = content.render(
            kind=Kind(row["kind"]),
            lang=row["language"],
            procedure=procedure,
            context=row["context"],
            tracking_code=contact.tracking_code,
            tracking_url=f"{s.tracking_public_url.rstrip('/')}/suivi/{contact.tracking_code}?lang={row['language']}",
            unsubscribe_url=unsubscribe,
        )
        if row["channel"] == "email":
            outcome = await self._email.send(
                message_id=row["message_id"], to=address, rendered=rendered, unsubscribe_url=unsubscribe
            )
        else:
            outcome = await self._sms.send(message_id=row["message_id"], to=address, text=rendered.sms)
        await self._record(row, outcome)
        log.info("%s %s by %s: %s", row["kind"], _word(outcome), row["channel"], _why(outcome), extra=ids)

    async def _record(self, row: asyncpg.Record | dict[str, Any], outcome: channels.Outcome) -> None:
        now = datetime.now(UTC)
        if isinstance(outcome, channels.Sent):
            status, reason, next_at = Status.SENT, None, now
        elif outcome.permanent:
            status, reason, next_at = Status.PERMANENT_FAILURE, outcome.reason, now
        else:
            retry = domain.next_try(
                attempts=row["attempts"], schedule=self._settings.send_retry_schedule, now=now
            )
            if retry is None:
                status, reason, next_at = (
                    Status.PERMANENT_FAILURE,
                    f"gave up after {row['attempts']} tries: {outcome.reason}",
                    now,
                )
            else:
                status, reason, next_at = Status.TEMPORARY_FAILURE, outcome.reason, retry
        await self._pool.execute(
            "UPDATE notify.messages SET status = $2, reason = $3, next_attempt_at = $4, lease_until = NULL, claim_id = NULL, "
            "updated_at = now(), sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE sent_at END, "
            "provider_ref = COALESCE($5, provider_ref) WHERE message_id = $1",
            row["message_id"],
            status.value,
            reason,
            next_at,
            outcome.provider_ref if isinstance(outcome, channels.Sent) else None,
        )
        messages_counter.add(1, {"channel": row["channel"], "status": status.value})


def _address(contact: Contact | None, channel: str) -> str | None:
    if contact is None:
        return None
    return contact.email if channel == "email" else contact.phone if channel == "sms" else None


def _word(outcome: channels.Outcome) -> str:
    if isinstance(outcome, channels.Sent):
        return "sent"
    return "failed for good" if outcome.permanent else "failed for now"


def _why(outcome: channels.Outcome) -> str:
    return "accepted by the provider" if isinstance(outcome, channels.Sent) else outcome.reason
