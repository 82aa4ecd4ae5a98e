"""NATS JetStream: the `CASES` stream, publishing events, and the durable pull-consumer loop.

Ack policy, the same for every consumer:
- a message that is not a Suivi event, or whose data is invalid: record it as a dead letter, `term`;
- an event type this code does not handle: `ack` (another service's business);
- a handler failure (database down, predecessor not folded yet...): `nak` with a growing delay;
- still failing at the last allowed delivery: record it as a dead letter and `term`, and say so loudly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from shared.events import ALL_CASES, STREAM, Envelope, EventData, MalformedEvent, UnknownEvent, parse
from shared.telemetry import consumer_span

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_SECONDS = 24 * 3600
MAX_DELIVER = 12
ACK_WAIT_SECONDS = 30


async def connect(url: str, *, name: str) -> NATS:
    """A connection that reconnects forever; outages are logged, not raised to the caller."""

    async def on_disconnect() -> None:
        if nc.is_closed or nc.is_draining:
            return
        log.warning("%s lost its NATS connection to %s; reconnecting", name, url)

    async def on_reconnect() -> None:
        log.info("%s reconnected to NATS at %s", name, url)

    async def on_error(exc: Exception) -> None:
        log.warning("%s: NATS connection problem: %s", name, exc)

    nc = NATS()
    await nc.connect(
        url,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        connect_timeout=5,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        error_cb=on_error,
    )
    return nc


async def ensure_stream(js: JetStreamContext, *, replicas: int = 1) -> None:
    """Create or update the `CASES` stream: file storage, kept forever, a day of duplicate detection."""
    config = StreamConfig(
        name=STREAM,
        subjects=[ALL_CASES],
        storage=StorageType.FILE,
        num_replicas=replicas,
        max_age=0,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        description="Every event of every case, kept forever (Suivi)",
    )
    try:
        await js.stream_info(STREAM)
    except NotFoundError:
        await js.add_stream(config)
        log.info("created JetStream stream %s (%d replica(s))", STREAM, replicas)
        return
    await js.update_stream(config)


def event_headers(envelope: Envelope, *, traceparent: str | None) -> dict[str, str]:
    headers = {
        "Nats-Msg-Id": str(envelope.id),
        "ce-type": envelope.type,
        "ce-subject": envelope.subject,
        "ce-source": envelope.source,
    }
    if traceparent:
        headers["traceparent"] = traceparent
    return headers


class Nak(Exception):
    """Raised by a handler to have the message redelivered later without it counting as a failure."""


Handler = Callable[[Envelope, EventData, int], Awaitable[None]]
DeadLetterRecorder = Callable[[Msg, str], Awaitable[None]]


@dataclass
class ConsumerSpec:
    durable: str
    # Several filters need NATS 2.10+; one consumer then sees only the event kinds it handles.
    filter_subjects: tuple[str, ...] = (ALL_CASES,)
    batch: int = 64
    max_ack_pending: int = 1000


def raise_if_cancelling() -> None:
    """nats-py can turn a cancellation into its own timeout error; do not let a stopping task loop on."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _backoff(delivered: int) -> float:
    return float(min(30, 0.2 * 2 ** min(delivered, 8)))


class PullConsumer:
    """Fetches from a durable pull consumer and hands each event to `handler(envelope, data, stream_seq)`."""

    def __init__(
        self,
        js: JetStreamContext,
        spec: ConsumerSpec,
        handler: Handler,
        on_dead_letter: DeadLetterRecorder,
    ) -> None:
        self._js, self._spec, self._handler, self._dead = js, spec, handler, on_dead_letter
        self._stopping = asyncio.Event()

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self._spec.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=ACK_WAIT_SECONDS,
            max_deliver=MAX_DELIVER,
            max_ack_pending=self._spec.max_ack_pending,
            filter_subject=self._spec.filter_subjects[0] if len(self._spec.filter_subjects) == 1 else None,
            filter_subjects=list(self._spec.filter_subjects) if len(self._spec.filter_subjects) > 1 else None,
        )

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                sub = await self._js.pull_subscribe(
                    self._spec.filter_subjects[0],
                    durable=self._spec.durable,
                    stream=STREAM,
                    config=self.config(),
                )
                await self._fetch_loop(sub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise_if_cancelling()
                log.warning("consumer %s cannot fetch (%s); retrying in 1 s", self._spec.durable, exc)
                await asyncio.sleep(1)

    async def _fetch_loop(self, sub: JetStreamContext.PullSubscription) -> None:
        while not self._stopping.is_set():
            try:
                messages = await sub.fetch(self._spec.batch, timeout=1)
            except TimeoutError:
                raise_if_cancelling()
                continue
            for msg in messages:
                await self.handle(msg)

    def stop(self) -> None:
        self._stopping.set()

    async def handle(self, msg: Msg) -> None:
        meta = msg.metadata
        seq, delivered = meta.sequence.stream, meta.num_delivered
        try:
            envelope, data = parse(msg.data)
        except UnknownEvent as exc:
            log.info("consumer %s skips seq %d: %s", self._spec.durable, seq, exc)
            await msg.ack()
            return
        except MalformedEvent as exc:
            log.error(
                "consumer %s: seq %d on %s is malformed, dead-lettered: %s",
                self._spec.durable,
                seq,
                msg.subject,
                exc,
            )
            await self._dead(msg, str(exc))
            await msg.term()
            return
        ids = {"case_id": envelope.subject, "event_id": str(envelope.id), "stream_seq": seq}
        try:
            with consumer_span(msg.headers, name=f"fold {envelope.type}", attributes=ids):
                await self._handler(envelope, data, seq)
        except Nak as exc:
            if delivered >= MAX_DELIVER:
                await self._give_up(msg, f"still waiting after {delivered} deliveries: {exc}", ids)
                return
            await msg.nak(delay=_backoff(delivered))
            log.info(
                "consumer %s: %s for case %s later (%s)",
                self._spec.durable,
                envelope.type,
                envelope.subject,
                exc,
                extra=ids,
            )
            return
        except Exception as exc:
            if delivered >= MAX_DELIVER:
                await self._give_up(msg, f"failed {delivered} times: {exc}", ids)
                return
            log.warning(
                "consumer %s failed on event %s of case %s (attempt %d), retrying: %s",
                self._spec.durable,
                envelope.id,
                envelope.subject,
                delivered,
                exc,
                extra=ids,
            )
            await msg.nak(delay=_backoff(delivered))
            return
        await msg.ack()

    async def _give_up(self, msg: Msg, reason: str, ids: dict[str, object]) -> None:
        """Record the message as a dead letter (kept in the reader's schema) and stop its redelivery."""
        log.error(
            "consumer %s gave up on event %s of case %s: %s; it is kept in dead_letters",
            self._spec.durable,
            ids["event_id"],
            ids["case_id"],
            reason,
            extra=ids,
        )
        await self._dead(msg, reason)
        await msg.term()
