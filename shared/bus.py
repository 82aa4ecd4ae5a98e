"""NATS JetStream: the `CASES` stream, publishing events, and the durable pull-consumer loop.

Ack policy, the same for every consumer (`PullConsumer.handle`):
- a transient failure (PostgreSQL or NATS unavailable, a timeout, a reset connection, a deadlock) is not
  the message's fault: the consumer puts the batch back (`nak` with a delay, which uses up nothing: the
  consumer's deliveries are unlimited), waits with a growing pause and tries again, however long the
  outage lasts. Its lag is visible (`lag()`, the `suivi.consumer.pending` gauge, `/readyz`);
- `Nak` from a handler (an earlier event has not arrived yet) is not a failure either: `nak`, later;
- an event type this code does not know (a newer producer): handed to `on_unknown`, then `ack`;
- a message bad in itself (not a Suivi event, invalid data, or the handler failing the same way
  `poison_attempts` times): recorded as a dead letter, and only once that record is durable, `term`.
  `python -m shared.deadletters` lists and replays them.

A consumer given `fold_batch` first folds a fetched batch all at once (`PullConsumer.fold_at_once`), the
fast way, and acks it; only when that fails for a reason of one of its messages (one must wait for an
earlier event, one fails, one is not a valid event) does it roll back and handle the batch one message at
a time, as above, so that the policy decides for each message exactly as if there were no fast way.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
import httpx
import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    KeyValueConfig,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue
from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.trace import TracerProvider

from shared.events import ALL_CASES, STREAM, Envelope, EventData, MalformedEvent, UnknownEvent, parse
from shared.telemetry import consumer_span, meter

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_SECONDS = 24 * 3600
# JetStream never gives a message up on its own: only a message bad in itself is set aside, by us.
UNLIMITED_DELIVERIES = -1


def servers_of(url: str) -> list[str]:
    """The servers `NATS_URL` names: one, or several of a cluster separated by commas
    (`nats://nats-0:4222,nats://nats-1:4222,nats://nats-2:4222`), so that a service starting, or
    reconnecting, while one of them is down reaches another."""
    servers = [part.strip() for part in url.split(",") if part.strip()]
    if not servers:
        raise ValueError("NATS_URL names no server")
    return servers


async def connect(url: str, *, name: str) -> NATS:
    """A connection that reconnects forever; outages are logged, not raised to the caller. `url`: one
    server, or several comma-separated (`servers_of`)."""

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
        servers_of(url),
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


# Figures stats publishes for other services (forecasts, usual durations): a JetStream key-value bucket, one
# key per procedure (`forecast.<procedure>`), the latest value only. tracking reads it; it never calls stats.
FIGURES_BUCKET = "SUIVI_FIGURES"


async def figures_bucket(js: JetStreamContext, *, replicas: int = 1) -> KeyValue:
    """The figures bucket, created if missing (by whichever service gets there first)."""
    try:
        return await js.key_value(FIGURES_BUCKET)
    except BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(
                bucket=FIGURES_BUCKET,
                history=1,
                replicas=replicas,
                storage=StorageType.FILE,
                description="Figures stats publishes for the other services (Suivi)",
            )
        )


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


class Transient(Exception):
    """Raised by a handler when something it depends on is unavailable: retry later, however long."""


_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57", "58")  # connection, rollback, resources, shutdown
_TRANSIENT = (
    Transient,
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    nats.errors.Error,
    httpx.TransportError,
)


def is_transient(exc: BaseException) -> bool:
    """Whether a failure says nothing about the message: a dependency down, a timeout, a deadlock."""
    if isinstance(exc, _TRANSIENT):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        state = str(getattr(exc, "sqlstate", "") or "")
        return state.startswith(_TRANSIENT_SQLSTATE_CLASSES) or state == "55P03"
    return False


Handler = Callable[[Envelope, EventData, int], Awaitable[None]]
UnknownHandler = Callable[[Envelope, int], Awaitable[None]]


@dataclass(frozen=True)
class Delivery:
    """One message of a batch folded at once: its event (`data` None for a type this release does not know,
    which a reader moves past) and its stream sequence."""

    msg: Msg
    envelope: Envelope
    data: EventData | None
    seq: int
    traced: bool = True  # whether spans were recorded when it was fetched (`_spans_recorded`)

    def span(self) -> AbstractContextManager[object]:
        """The consumer span of this event, continuing the trace its `traceparent` header names. None
        when there is nothing to record nor to pass on (no trace context, spans not recorded)."""
        if not self.traced and "traceparent" not in (self.msg.headers or {}):
            return nullcontext()
        ids = {"case_id": self.envelope.subject, "event_id": str(self.envelope.id), "stream_seq": self.seq}
        return consumer_span(self.msg.headers, name=f"fold {self.envelope.type}", attributes=ids)


def _spans_recorded() -> bool:
    """Whether this process records spans (an SDK tracer provider: exported, or a test's in-memory one)."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


# Folds a whole batch in one transaction, or raises and leaves nothing behind (see the module docstring).
BatchFold = Callable[[list[Delivery]], Awaitable[None]]
# A fetched batch, and its events if they could all be parsed.
_Fetched = tuple[list[Msg], list[Delivery] | None]
# Where a fetched batch's effects are kept until they are all durable (e.g. one PostgreSQL transaction):
# the consumer acknowledges the batch's messages only once the scope has closed without an error.
BatchScope = Callable[[], AbstractAsyncContextManager[None]]


class DeadLetters(Protocol):
    """Where a consumer keeps the messages it set aside, durably, and the replays asked for."""

    async def record(self, *, stream_seq: int, subject: str, body: bytes, reason: str) -> None: ...

    async def requested(self) -> list[tuple[int, bytes]]: ...

    async def replayed(self, stream_seq: int) -> None: ...

    async def failed_again(self, stream_seq: int, reason: str) -> None: ...


@dataclass
class ConsumerSpec:
    durable: str
    # Several filters need NATS 2.10+; one consumer then sees only the event kinds it handles.
    filter_subjects: tuple[str, ...] = (ALL_CASES,)
    # Messages fetched, and folded, together: a bigger batch shares its transaction among more events.
    batch: int = 64
    max_ack_pending: int = 1000
    ack_wait_seconds: float = 30
    # The longest pause between two tries while a dependency is down.
    retry_max_seconds: float = 30
    # How many times the handler may fail on one message, not transiently, before it is set aside.
    poison_attempts: int = 3
    replay_poll_seconds: float = 2


@dataclass
class Lag:
    """How far behind a consumer is: messages not handled yet, and since when it has been held up."""

    pending: int = 0
    waiting_since: float | None = None
    reason: str | None = None
    dead_letters: int = 0

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pending": self.pending}
        if self.waiting_since is not None:
            out["waiting_for_seconds"] = round(time.time() - self.waiting_since, 1)
            out["reason"] = self.reason
        return out


@dataclass
class _Retry:
    """The pause before the next try, growing while failures last, reset by a success."""

    cap: float
    pause: float = 0.0
    failures_by_seq: dict[int, int] = field(default_factory=dict)

    def next_pause(self) -> float:
        self.pause = min(self.cap, max(0.1, self.pause * 2))
        return self.pause

    def reset(self) -> None:
        self.pause = 0.0


def raise_if_cancelling() -> None:
    """nats-py can turn a cancellation into its own timeout error; do not let a stopping task loop on."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class _HeldUp(Exception):
    """A transient failure on one message: the rest of the batch goes back to the stream, then a pause."""


_RUNNING: weakref.WeakSet[PullConsumer] = weakref.WeakSet()


def _observe_lags(options: CallbackOptions) -> list[Observation]:
    return [Observation(c.lag.pending, {"consumer": c.name}) for c in list(_RUNNING)]


meter.create_observable_gauge(
    "suivi.consumer.pending",
    callbacks=[_observe_lags],
    unit="{message}",
    description="Messages of the stream a consumer has not handled yet",
)
dead_lettered = meter.create_counter(
    "suivi.consumer.dead_letters", unit="{message}", description="Messages set aside as bad in themselves"
)


class PullConsumer:
    """Fetches from a durable pull consumer and hands each event to `handler(envelope, data, stream_seq)`."""

    def __init__(
        self,
        js: JetStreamContext,
        spec: ConsumerSpec,
        handler: Handler,
        dead_letters: DeadLetters,
        *,
        on_unknown: UnknownHandler | None = None,
        batch_scope: BatchScope | None = None,
        fold_batch: BatchFold | None = None,
    ) -> None:
        self._js, self._spec, self._handler, self._dead = js, spec, handler, dead_letters
        self._on_unknown = on_unknown
        self._batch_scope = batch_scope
        self._fold_batch = fold_batch
        # In a batch scope: the messages handled, acknowledged once the scope is durable.
        self._deferred: list[tuple[Msg, int]] | None = None
        self._stopping = asyncio.Event()
        self._retry = _Retry(cap=spec.retry_max_seconds)
        self._last_replay_check = 0.0
        self.lag = Lag()
        _RUNNING.add(self)

    @property
    def name(self) -> str:
        return self._spec.durable

    def config(self) -> ConsumerConfig:
        filters = self._spec.filter_subjects
        return ConsumerConfig(
            name=self._spec.durable,
            durable_name=self._spec.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self._spec.ack_wait_seconds,
            max_deliver=UNLIMITED_DELIVERIES,
            max_ack_pending=self._spec.max_ack_pending,
            filter_subject=filters[0] if len(filters) == 1 else None,
            filter_subjects=list(filters) if len(filters) > 1 else None,
        )

    async def ensure(self) -> None:
        """Create the durable consumer, or bring an existing one (an older release's) to this config."""
        info = await self._js.add_consumer(STREAM, self.config())
        have = set(info.config.filter_subjects or [info.config.filter_subject or ALL_CASES])
        if have != set(self._spec.filter_subjects) or info.config.max_deliver != UNLIMITED_DELIVERIES:
            raise RuntimeError(
                f"JetStream kept consumer {self.name} with filters {sorted(have)} and max_deliver "
                f"{info.config.max_deliver}; this release needs {list(self._spec.filter_subjects)}. Delete it "
                f"(nats consumer rm {STREAM} {self.name}): it is recreated at start-up and its reader folds "
                "the stream again, exactly once"
            )

    async def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                await self.ensure()
                sub = await self._js.pull_subscribe_bind(durable=self._spec.durable, stream=STREAM)
                if failures:
                    self._progressed()  # NATS answers again
                failures = 0
                await self._fetch_loop(sub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise_if_cancelling()
                failures += 1
                self._held_up(f"cannot fetch from NATS ({_describe(exc)})")
                if failures == 1 or failures % 60 == 0:
                    log.warning(
                        "consumer %s cannot fetch from JetStream (%s); it keeps trying every second and "
                        "resumes where it stopped once NATS answers",
                        self.name,
                        _describe(exc),
                    )
                await asyncio.sleep(1)

    async def _fetch_loop(self, sub: JetStreamContext.PullSubscription) -> None:
        """Fetch and handle batch after batch. A full batch says more are waiting (a rebuild, a backlog):
        the next one is fetched while this one is handled, so NATS and PostgreSQL work side by side; it is
        handled only once this one is done, and put back if this one was held up."""
        ahead: asyncio.Future[_Fetched] | None = None
        try:
            while not self._stopping.is_set():
                fetching, ahead = ahead or asyncio.ensure_future(self._fetch(sub)), None
                try:
                    messages, deliveries = await fetching
                except TimeoutError:
                    raise_if_cancelling()
                    if self.lag.waiting_since is None:  # idle, not waiting for a message put back
                        self.lag.pending = 0
                    await self._replay_if_asked()
                    continue
                if len(messages) >= self._spec.batch:
                    ahead = asyncio.ensure_future(self._fetch(sub))
                await self.handle_batch(messages, deliveries=deliveries)
                if ahead is not None and self.lag.waiting_since is not None:
                    await self._put_back_ahead(ahead)
                    ahead = None
                await self._replay_if_asked()
        finally:
            if ahead is not None:  # stopping: what was fetched ahead goes back for the next consumer now
                if ahead.done() and not ahead.cancelled() and ahead.exception() is None:
                    for msg in ahead.result()[0]:
                        await _quietly(msg.nak())
                ahead.cancel()
                await asyncio.gather(ahead, return_exceptions=True)

    async def _fetch(self, sub: JetStreamContext.PullSubscription) -> _Fetched:
        """A batch, with its events parsed for `fold_batch` (None: a message must be handled alone)."""
        messages = await sub.fetch(self._spec.batch, timeout=1)
        return messages, self._deliveries(messages) if self._fold_batch is not None else None

    async def _put_back_ahead(self, ahead: asyncio.Future[_Fetched]) -> None:
        """The batch fetched ahead of one that was held up goes back too, to come after the pause."""
        try:
            messages, _ = await ahead
        except Exception:  # nothing fetched (NATS away, or no more messages)
            raise_if_cancelling()
            return
        for msg in messages:
            await _quietly(msg.nak(delay=self._retry.pause))

    def stop(self) -> None:
        self._stopping.set()

    async def handle_batch(self, messages: list[Msg], *, deliveries: list[Delivery] | None = None) -> None:
        """Handle the messages in order; on a transient failure put the rest back and pause.

        With `fold_batch`, the fast way first (`fold_at_once`); the rest is the careful way. With a batch
        scope, every message's effect is kept in the scope (one transaction) and the
        messages are acknowledged once it closed: a failure of the scope itself (the commit) puts the
        whole batch back, and folding it again changes nothing that was already durable."""
        if self._fold_batch is not None and await self.fold_at_once(messages, deliveries=deliveries):
            return
        if self._batch_scope is None:
            await self._handle_each(messages)
            return
        self._deferred = []
        try:
            async with self._batch_scope():
                await self._handle_each(messages, pause_on_hold=False)
        except Exception as exc:
            raise_if_cancelling()
            if not isinstance(exc, _HeldUp):
                self._held_up(f"cannot make the batch durable: {_describe(exc)}")
                log.warning(
                    "consumer %s: the batch was not made durable (%s); it comes again", self.name, exc
                )
            await self._put_back(messages)
            return
        finally:
            deferred, self._deferred = self._deferred, None
        for msg, seq in deferred:
            await self._acknowledge(msg, seq)
        if messages:
            self.lag.pending = messages[-1].metadata.num_pending

    async def fold_at_once(self, messages: list[Msg], *, deliveries: list[Delivery] | None = None) -> bool:
        """The fast way: the whole batch handed to `fold_batch` (one transaction), then acked. False, with
        nothing folded, when a message of the batch must be handled on its own (the slow way): one is not a
        valid event, or the fold failed (an event must wait for an earlier one, or its handler failed).
        A transient failure puts the batch back and pauses, as it would the slow way. `deliveries`: the
        messages' events, if they were parsed already."""
        assert self._fold_batch is not None
        if deliveries is None:
            deliveries = self._deliveries(messages)
        if not deliveries:
            return False
        try:
            await self._fold_batch(deliveries)
        except Exception as exc:
            raise_if_cancelling()
            if not is_transient(exc):
                log.debug("consumer %s folds a batch one event at a time: %s", self.name, _describe(exc))
                return False
            self._held_up_on_batch(exc, deliveries)
            await self._put_back(messages)
            return True
        for delivery in deliveries:
            await self._acknowledge(delivery.msg, delivery.seq)
        if messages:
            self.lag.pending = messages[-1].metadata.num_pending
        return True

    def _deliveries(self, messages: list[Msg]) -> list[Delivery] | None:
        """The batch's events, or None if one of its messages is not a valid event (or is of a type this
        consumer cannot move past): the policy then decides for it alone."""
        deliveries, traced = [], _spans_recorded()
        for msg in messages:
            try:
                envelope, data = parse(msg.data)
            except UnknownEvent as exc:
                if exc.envelope is None or self._on_unknown is None:
                    return None
                envelope, data = exc.envelope, None
            except MalformedEvent:
                return None
            deliveries.append(Delivery(msg, envelope, data, msg.metadata.sequence.stream, traced))
        return deliveries

    async def _handle_each(self, messages: list[Msg], *, pause_on_hold: bool = True) -> None:
        for index, msg in enumerate(messages):
            try:
                await self.handle(msg)
            except _HeldUp:
                if not pause_on_hold:
                    raise
                pause = self._retry.next_pause()
                for waiting in messages[index:]:
                    await _quietly(waiting.nak(delay=pause))
                await asyncio.sleep(pause)
                return
            self.lag.pending = msg.metadata.num_pending

    async def handle(self, msg: Msg) -> None:
        """One message, by the ack policy above. Raises `_HeldUp` on a transient failure."""
        meta = msg.metadata
        seq = meta.sequence.stream
        try:
            envelope, data = parse(msg.data)
        except UnknownEvent as exc:
            await self._unknown(msg, exc, seq)
            return
        except MalformedEvent as exc:
            await self._set_aside(msg, f"malformed: {exc}", ids={"stream_seq": seq, "subject": msg.subject})
            return
        ids = {"case_id": envelope.subject, "event_id": str(envelope.id), "stream_seq": seq}
        try:
            with consumer_span(msg.headers, name=f"fold {envelope.type}", attributes=ids):
                await self._handler(envelope, data, seq)
        except Nak as exc:
            log.info(
                "consumer %s: %s of case %s later (%s)",
                self.name,
                envelope.type,
                envelope.subject,
                exc,
                extra=ids,
            )
            await _quietly(
                msg.nak(delay=min(self._spec.retry_max_seconds, 0.2 * 2 ** min(meta.num_delivered, 6)))
            )
            return
        except Exception as exc:
            if is_transient(exc):
                self._held_up_by(exc, envelope, ids)
                raise _HeldUp from exc
            await self._failed(msg, exc, envelope, ids)
            return
        await self._acknowledge(msg, seq)

    async def _acknowledge(self, msg: Msg, seq: int) -> None:
        if self._deferred is not None:  # its effect is durable only once the batch scope closes
            self._deferred.append((msg, seq))
            return
        try:
            await msg.ack()
        except Exception as exc:  # the effect is recorded; a redelivery will find it folded
            log.info(
                "consumer %s could not ack seq %d (%s); its redelivery changes nothing", self.name, seq, exc
            )
        self._retry.failures_by_seq.pop(seq, None)
        self._progressed()

    async def _unknown(self, msg: Msg, exc: UnknownEvent, seq: int) -> None:
        if self._on_unknown is not None and exc.envelope is not None:
            try:
                await self._on_unknown(exc.envelope, seq)
            except Nak:
                await _quietly(msg.nak(delay=1))
                return
            except Exception as failure:
                ids = {"case_id": exc.envelope.subject, "event_id": str(exc.envelope.id), "stream_seq": seq}
                if is_transient(failure):
                    self._held_up_by(failure, exc.envelope, ids)
                    raise _HeldUp from failure
                await self._failed(msg, failure, exc.envelope, ids)
                return
        log.info("consumer %s skips seq %d: %s (a newer producer's event)", self.name, seq, exc)
        await self._acknowledge(msg, seq)

    async def _failed(self, msg: Msg, exc: Exception, envelope: Envelope, ids: dict[str, Any]) -> None:
        seq = ids["stream_seq"]
        failures = self._retry.failures_by_seq.get(seq, 0) + 1
        self._retry.failures_by_seq[seq] = failures
        if failures >= self._spec.poison_attempts:
            await self._set_aside(msg, f"{envelope.type} failed {failures} times: {_describe(exc)}", ids=ids)
            return
        log.warning(
            "consumer %s failed on %s of case %s (%s), try %d of %d before it is set aside",
            self.name,
            envelope.type,
            envelope.subject,
            _describe(exc),
            failures,
            self._spec.poison_attempts,
            extra=ids,
        )
        await _quietly(msg.nak(delay=min(self._spec.retry_max_seconds, 0.5 * failures)))

    async def _set_aside(self, msg: Msg, reason: str, *, ids: dict[str, Any]) -> None:
        """Record the message as a dead letter, durably, and only then stop its redelivery."""
        seq = msg.metadata.sequence.stream
        try:
            await self._dead.record(stream_seq=seq, subject=msg.subject, body=msg.data, reason=reason)
        except Exception as exc:  # not recorded: it must not be terminated, so it waits like an outage
            self._held_up(f"cannot record dead letter seq {seq}: {_describe(exc)}")
            log.error(
                "consumer %s cannot record seq %d as a dead letter (%s); keeping it", self.name, seq, exc
            )
            raise _HeldUp from exc
        await _quietly(msg.term())
        self._retry.failures_by_seq.pop(seq, None)
        self._progressed()
        self.lag.dead_letters += 1
        dead_lettered.add(1, {"consumer": self.name})
        log.error(
            "consumer %s set seq %d on %s aside as a dead letter: %s. Fix the cause, then "
            "`python -m shared.deadletters replay --service %s --seq %d`",
            self.name,
            seq,
            msg.subject,
            reason,
            self.name,
            seq,
            extra=ids,
        )

    def _held_up_by(self, exc: BaseException, envelope: Envelope, ids: dict[str, Any]) -> None:
        first = self.lag.waiting_since is None
        self._held_up(_describe(exc))
        if first or self._retry.pause >= self._spec.retry_max_seconds:
            log.warning(
                "consumer %s is held up on %s of case %s: %s. Nothing is lost: it retries, pausing up to "
                "%.0f s, until the dependency is back",
                self.name,
                envelope.type,
                envelope.subject,
                _describe(exc),
                self._spec.retry_max_seconds,
                extra=ids,
            )

    def _held_up_on_batch(self, exc: BaseException, deliveries: list[Delivery]) -> None:
        first = self.lag.waiting_since is None
        self._held_up(_describe(exc))
        if first or self._retry.pause >= self._spec.retry_max_seconds:
            log.warning(
                "consumer %s is held up folding seq %d to %d: %s. Nothing is lost: it retries, pausing up to "
                "%.0f s, until the dependency is back",
                self.name,
                deliveries[0].seq,
                deliveries[-1].seq,
                _describe(exc),
                self._spec.retry_max_seconds,
            )

    async def _put_back(self, messages: list[Msg]) -> None:
        """Every message of the batch back to the stream, then the pause, growing while failures last."""
        pause = self._retry.next_pause()
        for msg in messages:
            await _quietly(msg.nak(delay=pause))
        await asyncio.sleep(pause)

    def _held_up(self, reason: str) -> None:
        if self.lag.waiting_since is None:
            self.lag.waiting_since = time.time()
        self.lag.reason = reason

    def _progressed(self) -> None:
        if self.lag.waiting_since is not None:
            log.info(
                "consumer %s is moving again after %.0f s held up (%s)",
                self.name,
                time.time() - self.lag.waiting_since,
                self.lag.reason,
            )
        self.lag.waiting_since, self.lag.reason = None, None
        self._retry.reset()

    async def _replay_if_asked(self) -> None:
        now = time.monotonic()
        if now - self._last_replay_check < self._spec.replay_poll_seconds:
            return
        self._last_replay_check = now
        try:
            requested = await self._dead.requested()
        except Exception as exc:
            if not is_transient(exc):
                raise
            return
        for seq, body in requested:
            await self.replay(seq, body)

    async def replay(self, seq: int, body: bytes) -> None:
        """Hand a dead letter to the handler again, as asked with `python -m shared.deadletters replay`."""
        try:
            envelope, data = parse(body)
            await self._handler(envelope, data, seq)
        except (Nak, _HeldUp) as exc:
            log.info("consumer %s: replay of seq %d waits (%s)", self.name, seq, exc)
            return
        except Exception as exc:
            if is_transient(exc):
                return
            await self._dead.failed_again(seq, _describe(exc))
            log.error("consumer %s: replayed seq %d failed again: %s", self.name, seq, _describe(exc))
            return
        await self._dead.replayed(seq)
        log.info("consumer %s replayed dead letter seq %d", self.name, seq)


async def _quietly(action: Awaitable[None]) -> None:
    """An ack, nak or term that cannot be sent (NATS away) is not worth failing over: JetStream redelivers
    the message after its ack wait, and handling it again changes nothing."""
    try:
        await action
    except Exception as exc:
        log.debug("could not answer JetStream: %s", exc)
