"""The rules of webhook deliveries, without I/O: secrets and signatures (Standard Webhooks 1.0), what a
target's answer means, and when to try again.

- A secret is `whsec_` + base64 of 32 random bytes; what is signed is `{webhook-id}.{webhook-timestamp}.{body}`
  with HMAC-SHA256, sent as `v1,<base64>`. During a rotation's grace period both the new and the previous
  secret sign, space-separated in one `webhook-signature` header, so a receiver holding either verifies.
- A 2xx answer is a delivery; 410 Gone disables the subscription (the receiver says it is gone for good);
  anything else (3xx included: redirects are not followed) is a failure, tried again on the schedule.
  429, 502, 503 and 504 may say when with `Retry-After`: never sooner than that.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
SECRET_BYTES = 32
# The most a receiver's `Retry-After` may hold a delivery back: beyond, it reads as a broken header.
MAX_RETRY_AFTER_SECONDS = 24 * 3600
THROTTLING = frozenset({429, 502, 503, 504})
# Retries spread by up to this share of their pause, so that failed deliveries do not come back together.
JITTER = 0.1


class SubscriptionState(StrEnum):
    ACTIVE = "active"
    # Deliveries are queued, not sent: by an admin, or when a delivery used up its retries.
    PAUSED = "paused"
    # Nothing more is queued: the target answered 410 Gone.
    DISABLED = "disabled"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    # Retries used up; it goes again, first of its case, when the subscription is resumed.
    FAILED = "failed"


class Outcome(StrEnum):
    """What came of one attempt (the `outcome` attribute of `suivi.webhook.deliveries`)."""

    DELIVERED = "delivered"
    RETRY = "retry"
    EXHAUSTED = "exhausted"
    GONE = "gone"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: Iterable[str], *, msg_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature`: one `v1,...` per secret, newest first, separated by spaces."""
    return " ".join(sign(s, msg_id=msg_id, timestamp=timestamp, body=body) for s in secrets_)


def is_success(status_code: int) -> bool:
    return 200 <= status_code < 300


def retry_after_seconds(status_code: int, header: str | None, *, now: datetime) -> float | None:
    """The pause a throttling answer asks for (`Retry-After`: seconds or an HTTP date), or None."""
    if status_code not in THROTTLING or not header:
        return None
    value = header.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            seconds = (parsedate_to_datetime(value) - now).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def retry_delay(
    *, attempts: int, schedule: tuple[float, ...], retry_after: float | None, jitter: float
) -> float | None:
    """Seconds until the next try after `attempts` failed tries, or None once the schedule is used up.

    `jitter` in [-1, 1] spreads the pause by up to `JITTER` of it; a `Retry-After` is a floor."""
    if attempts > len(schedule):
        return None
    pause = schedule[attempts - 1] * (1 + JITTER * max(-1.0, min(1.0, jitter)))
    return max(pause, retry_after or 0.0)


@dataclass(frozen=True)
class Answer:
    """What came back from one try: a status code, or an error (no answer, a refused address)."""

    status_code: int | None
    error: str | None
    retry_after: float | None
    duration_ms: int


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    status: DeliveryStatus
    retry_in: float
    error: str | None

    def subscription_change(self, *, event_id: object) -> tuple[str, str] | None:
        """The subscription's new state and its reason, if this outcome changes it."""
        if self.outcome is Outcome.GONE:
            return SubscriptionState.DISABLED.value, "the target answered 410 Gone"
        if self.outcome is Outcome.EXHAUSTED:
            reason = f"retries used up delivering event {event_id} (last error: {self.error})"
            return SubscriptionState.PAUSED.value, reason
        return None


def decide(
    *,
    status_code: int | None,
    error: str | None,
    retry_after: float | None,
    attempts: int,
    schedule: tuple[float, ...],
    jitter: float,
) -> Decision:
    """What to do after try number `attempts` of a delivery."""
    if status_code is not None and is_success(status_code):
        return Decision(Outcome.DELIVERED, DeliveryStatus.DELIVERED, 0, None)
    if status_code == 410:
        # Kept pending: resuming the subscription (the target is back) sends it first.
        return Decision(Outcome.GONE, DeliveryStatus.PENDING, 0, error)
    delay = retry_delay(attempts=attempts, schedule=schedule, retry_after=retry_after, jitter=jitter)
    if delay is None:
        return Decision(Outcome.EXHAUSTED, DeliveryStatus.FAILED, 0, error)
    return Decision(Outcome.RETRY, DeliveryStatus.PENDING, delay, error)
