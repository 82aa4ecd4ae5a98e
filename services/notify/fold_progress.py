"""How far notify's fold has got in the stream with no message left behind, for the webhook dispatcher.

Several replicas fold the stream side by side, each its own batch of the shared durable consumer, so one
may commit a case's later event while another is still folding an earlier one: the earlier event's
delivery does not exist yet, and the later one would go first. A delivery therefore goes only once every
message before it is folded (`through`):
- every message up to the consumer's ack floor in JetStream is folded and committed (a reader acks only
  after its commit) or set aside as a dead letter (recorded, then terminated, which moves the floor on);
- past it, the positions folded since (rows of `notify.events`, written in the fold's transaction) or set
  aside (`notify.dead_letters`), with no gap: a batch committed whose ack is still on its way.

The second is read from PostgreSQL at each pass, so one replica's deliveries go as soon as its fold
commits; NATS is asked for the floor only when a delivery waits past what PostgreSQL shows (another
replica's batch, a message held or put back, a position with no event in the stream).
"""

from __future__ import annotations

import logging
import time

import asyncpg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from services.notify import webhook_queries as queries
from shared.bus import raise_if_cancelling
from shared.events import STREAM

log = logging.getLogger(__name__)

ACK_FLOOR_TIMEOUT_SECONDS = 2
# Webhooks held back this long by the fold are worth an operator's look (a replica's batch comes again
# only after the consumer's ack wait; a message held by an outage waits for it).
LONG_WAIT_SECONDS = 60


class FoldProgress:
    def __init__(self, js: JetStreamContext, *, consumer: str) -> None:
        self._js, self._consumer = js, consumer
        # Every message of the stream up to this position is folded (it only grows).
        self.through = 0
        self._floor_unreadable = False
        # Since when a delivery has waited for the fold, and at which `through` (a move starts it afresh).
        self._stuck: tuple[int, float] | None = None
        self._warned = False

    async def catch_up(self, conn: asyncpg.Connection) -> int:
        """`through`, carried on past the positions folded (or set aside) since, with no gap."""
        self.through = max(self.through, await queries.folded_through(conn, since=self.through))
        return self.through

    async def read_ack_floor(self) -> bool:
        """Carry `through` on to the consumer's ack floor in JetStream; whether it moved. If NATS does
        not answer, `through` stays where it was (deliveries past it wait, none goes out of order)."""
        try:
            info = await self._js.consumer_info(STREAM, self._consumer, timeout=ACK_FLOOR_TIMEOUT_SECONDS)
        except Exception as exc:
            raise_if_cancelling()
            self._floor_unreadable_because(exc)
            return False
        if self._floor_unreadable:
            log.info("notify reads consumer %s's ack floor from NATS again", self._consumer)
            self._floor_unreadable = False
        floor = info.ack_floor.stream_seq if info.ack_floor is not None else 0
        if floor <= self.through:
            return False
        self.through = floor
        return True

    def waiting(self, *, on_fold: bool) -> None:
        """Note whether a case's delivery waits for the fold; say so once the fold has not moved for long."""
        now = time.monotonic()
        if on_fold and self._stuck is not None and self._stuck[0] == self.through:
            if not self._warned and now - self._stuck[1] > LONG_WAIT_SECONDS:
                self._warned = True
                log.warning(
                    "webhooks have waited %.0f s for consumer %s to fold stream seq %d (a case's later "
                    "events wait for its earlier ones): see the consumer's lag in /readyz; a message held "
                    "by an outage waits for it, a stopped replica's batch comes again after the ack wait",
                    now - self._stuck[1],
                    self._consumer,
                    self.through + 1,
                    extra={"consumer": self._consumer, "stream_seq": self.through + 1},
                )
            return
        if self._warned:
            log.info(
                "webhooks move again: consumer %s folded past stream seq %d", self._consumer, self.through
            )
        self._stuck, self._warned = ((self.through, now) if on_fold else None), False

    def _floor_unreadable_because(self, exc: BaseException) -> None:
        if self._floor_unreadable:
            return
        self._floor_unreadable = True
        if isinstance(exc, NotFoundError):  # at start-up, before the consumer task has created it
            log.info("consumer %s is not created yet: webhooks wait for its fold", self._consumer)
            return
        log.warning(
            "cannot read consumer %s's ack floor from NATS (%s): webhooks of events after stream seq %d "
            "wait until NATS answers or their predecessors show as folded in PostgreSQL; it asks again at "
            "each pass",
            self._consumer,
            type(exc).__name__,
            self.through,
            extra={"consumer": self._consumer},
        )
