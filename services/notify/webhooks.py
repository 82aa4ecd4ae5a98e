"""Webhooks: signed deliveries of case events to the city's other systems (Standard Webhooks 1.0).

`enqueue` is called by notify's fold, in its transaction, for every event: one delivery per subscription
whose filters take the event (paused ones too: they are sent on resume). `run_dispatcher` sends them:

- each request (`webhook_http`): the CloudEvent exactly as on the bus, signed (`webhook-id` = the event
  id, on which receivers dedupe: delivery is at least once), to the address checked at that moment;
- each subscription has its own worker and its own connections, up to `IN_FLIGHT_PER_SUBSCRIPTION`
  deliveries at once (of different cases), `IN_FLIGHT` in all, each bounded by WEBHOOK_TIMEOUT: a slow
  or dead target holds back only itself;
- a case's deliveries to a subscription go out in order, one at a time, each only once the fold has
  passed every earlier message of the stream (`fold_progress`: another replica may still be folding the
  case's earlier event); a failed one is tried again on WEBHOOK_RETRY_SCHEDULE (with jitter, never before
  a `Retry-After`) and holds back that case's later ones; when the schedule is used up the subscription
  is paused, its deliveries kept for resume or replay; 410 Gone disables the subscription.

Workers wake on `NOTIFY notify_webhooks` (sent by `enqueue`, resume and replay) and poll every
WEBHOOK_POLL_SECONDS in any case, every FOLD_RECHECK_SECONDS while a delivery waits for the fold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid

import asyncpg
import httpx
from opentelemetry import propagate
from opentelemetry.trace import SpanKind

from services.notify import webhook_http
from services.notify import webhook_queries as queries
from services.notify import webhook_rules as rules
from services.notify import webhook_targets as targets
from services.notify.fold_progress import FoldProgress
from services.notify.settings import NotifySettings
from shared.bus import is_transient, raise_if_cancelling
from shared.events import Envelope
from shared.runtime import Runtime, stop_tasks
from shared.telemetry import meter, tracer

log = logging.getLogger(__name__)

deliveries_counter = meter.create_counter(
    "suivi.webhook.deliveries", unit="{attempt}", description="Webhook delivery attempts, by outcome"
)
duration_histogram = meter.create_histogram(
    "suivi.webhook.duration", unit="s", description="Time a webhook target took to answer"
)

IN_FLIGHT_PER_SUBSCRIPTION = webhook_http.CONNECTIONS
# A bound on sockets and memory; a slow target takes at most IN_FLIGHT_PER_SUBSCRIPTION of them.
IN_FLIGHT = 200
# A claim outlives the request it covers (bounded by WEBHOOK_TIMEOUT) by this much, for recording its
# outcome: no other replica takes a delivery still in flight. After a crash, the delivery goes again then.
LEASE_MARGIN_SECONDS = 5
# While a delivery waits for another replica's fold, how soon to look again: that fold's commit wakes the
# dispatchers only if it queued a delivery, and a dead letter or the ack floor moving never does.
FOLD_RECHECK_SECONDS = 0.1


async def enqueue(
    conn: asyncpg.Connection, *, envelope: Envelope, stream_seq: int, service: str | None
) -> int:
    """Queue the event for every active (or paused) subscription whose filters match; return how many."""
    return await queries.enqueue(
        conn,
        event_id=envelope.id,
        stream_seq=stream_seq,
        case_id=envelope.case_id,
        procedure=envelope.procedure,
        event_type=envelope.type,
        service=service,
    )


async def run_dispatcher(runtime: Runtime, settings: NotifySettings, *, consumer: str) -> None:
    """Deliver the queued webhooks, each subscription on its own, until stopped. `consumer`: the durable
    consumer that folds the events (their deliveries wait for its fold to pass them)."""
    await Dispatcher(runtime.pool, settings, fold=FoldProgress(runtime.js, consumer=consumer)).run()


class Dispatcher:
    def __init__(self, pool: asyncpg.Pool, settings: NotifySettings, *, fold: FoldProgress) -> None:
        self._pool, self._settings, self._fold = pool, settings, fold
        self._allowed = targets.parse_allowances(settings.webhook_allow_private)
        self._slots = asyncio.Semaphore(IN_FLIGHT)
        self._workers: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()

    async def run(self) -> None:
        listener = asyncio.create_task(self._listen(), name="notify-webhooks-listen")
        try:
            while True:
                self._wake.clear()
                wait = await self._start_workers()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
        finally:
            await stop_tasks([listener, *self._workers.values()])

    async def _start_workers(self) -> float:
        """Start a worker for each subscription with a delivery due; return how long to sleep."""
        poll = self._settings.webhook_poll_seconds
        try:
            ready = await self._ready_subscriptions()
        except Exception as exc:
            raise_if_cancelling()
            _log_failure("looking for webhooks to send", exc)
            return poll
        for row in ready:
            subscription_id = row["subscription_id"]
            if row["wait"] is not None and row["wait"] <= 0 and subscription_id not in self._workers:
                self._workers[subscription_id] = asyncio.create_task(
                    self._work(subscription_id), name=f"notify-webhooks-{subscription_id}"
                )
        waits: list[float] = [row["wait"] for row in ready if row["wait"] is not None and row["wait"] > 0]
        on_fold = any(row["on_fold"] for row in ready)
        self._fold.waiting(on_fold=on_fold)
        return min([poll, *waits, *([FOLD_RECHECK_SECONDS] if on_fold else [])])

    async def _ready_subscriptions(self) -> list[asyncpg.Record]:
        """The subscriptions with deliveries waiting, as far as the fold has got; NATS is asked how far
        only if PostgreSQL alone leaves a delivery waiting for the fold (`fold_progress`)."""
        ready = await self._ready_as_folded()
        if any(row["on_fold"] for row in ready) and await self._fold.read_ack_floor():
            ready = await self._ready_as_folded()
        return ready

    async def _ready_as_folded(self) -> list[asyncpg.Record]:
        async with self._pool.acquire() as conn:
            through = await self._fold.catch_up(conn)
            return await queries.ready_subscriptions(conn, folded_through=through)

    async def _listen(self) -> None:
        """Wake the dispatcher on `NOTIFY notify_webhooks`; if the connection is lost, connect again."""
        while True:
            try:
                conn = await asyncpg.connect(self._settings.database_url)
            except Exception as exc:
                raise_if_cancelling()
                _log_failure("listening for webhooks (polling meanwhile)", exc)
                await asyncio.sleep(5)
                continue
            try:
                await conn.add_listener(queries.WAKE_CHANNEL, self._on_notify)
                self._wake.set()  # what was queued while it was not listening
                while not conn.is_closed():
                    await asyncio.sleep(5)
                    await conn.execute("SELECT 1", timeout=5)
            except Exception as exc:
                raise_if_cancelling()
                _log_failure("listening for webhooks (polling meanwhile)", exc)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), timeout=2)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _work(self, subscription_id: uuid.UUID) -> None:
        """Send this subscription's due deliveries, a few cases at a time, until none is left to send."""
        lease = self._settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS
        try:
            async with webhook_http.client(self._settings.webhook_timeout_seconds) as http:
                while True:
                    async with self._pool.acquire() as conn:
                        claimed = await queries.claim(
                            conn,
                            subscription_id,
                            limit=IN_FLIGHT_PER_SUBSCRIPTION,
                            lease_seconds=lease,
                            folded_through=self._fold.through,
                        )
                    if not claimed:
                        return
                    results = await asyncio.gather(
                        *(self._deliver(http, row) for row in claimed), return_exceptions=True
                    )
                    for result in results:
                        if isinstance(result, BaseException):
                            raise result
        except Exception as exc:
            raise_if_cancelling()
            _log_failure(f"sending the webhooks of subscription {subscription_id}", exc)
        finally:
            self._workers.pop(subscription_id, None)
            self._wake.set()

    async def _deliver(self, http: httpx.AsyncClient, row: asyncpg.Record) -> None:
        envelope = Envelope.model_validate(row["envelope"])
        ids = {
            "case_id": str(row["case_id"]),
            "event_id": str(row["event_id"]),
            "subscription_id": str(row["subscription_id"]),
        }
        parent = propagate.extract({"traceparent": envelope.traceparent} if envelope.traceparent else {})
        with tracer.start_as_current_span(
            f"webhook {envelope.type}", context=parent, kind=SpanKind.CLIENT, attributes=ids
        ):
            async with self._slots:
                answer = await webhook_http.send(
                    http,
                    url=row["url"],
                    msg_id=str(row["event_id"]),
                    secrets=[row["secret"], *([row["previous"]] if row["previous"] else [])],
                    body=envelope.model_dump_json().encode(),
                    allowed=self._allowed,
                    within=self._settings.webhook_timeout_seconds,
                )
        decision = rules.decide(
            status_code=answer.status_code,
            error=answer.error,
            retry_after=answer.retry_after,
            attempts=row["attempts"],
            schedule=self._settings.webhook_retry_schedule,
            jitter=random.uniform(-1, 1),
        )
        async with self._pool.acquire() as conn:
            await queries.record(
                conn,
                row,
                attempt={
                    "status_code": answer.status_code,
                    "duration_ms": answer.duration_ms,
                    "error": answer.error,
                    "outcome": decision.outcome.value,
                },
                status=decision.status.value,
                retry_in=decision.retry_in,
                subscription_change=decision.subscription_change(event_id=row["event_id"]),
            )
        deliveries_counter.add(1, {"outcome": decision.outcome.value})
        duration_histogram.record(answer.duration_ms / 1000)
        _log_decision(decision, row, answer, ids)


def _log_decision(
    decision: rules.Decision, row: asyncpg.Record, answer: rules.Answer, ids: dict[str, str]
) -> None:
    what = f"webhook of event {row['event_id']} to subscription {row['subscription_id']}"
    if decision.outcome is rules.Outcome.DELIVERED:
        log.info("%s: delivered in %d ms", what, answer.duration_ms, extra=ids)
    elif decision.outcome is rules.Outcome.RETRY:
        log.warning(
            "%s: try %d failed (%s); next in %.1f s",
            what,
            row["attempts"],
            answer.error,
            decision.retry_in,
            extra=ids,
        )
    elif decision.outcome is rules.Outcome.EXHAUSTED:
        log.error(
            "%s: retries used up after %d tries (%s): subscription paused",
            what,
            row["attempts"],
            answer.error,
            extra=ids,
        )
    else:
        log.warning("%s: the target answered 410 Gone: subscription disabled", what, extra=ids)


def _log_failure(doing: str, exc: BaseException) -> None:
    level = logging.WARNING if is_transient(exc) else logging.ERROR
    log.log(level, "%s failed (%s); trying again", doing, exc, exc_info=level == logging.ERROR)
