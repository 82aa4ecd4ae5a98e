"""The NATS server paused with SIGSTOP for longer than every client timeout (connecting: 5 s, a JetStream
request or publish: 5 s, a fetch: 1 s, the readiness flush: 2 s), then resumed with SIGCONT, while
citizens submit and agents act: submissions and actions are still acknowledged (PostgreSQL is the record,
the outboxes hold the events), and once the bus answers again everything arrives, once."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from datetime import datetime

import pytest

from shared.procedures import CITY_TIMEZONE
from tests.conftest import Env
from tests.faults.conftest import MakeSystem
from tests.faults.invariants import assert_nothing_lost_or_doubled, caught_up
from tests.faults.load import Load

PAUSED_SECONDS = 12


@pytest.mark.timeout(150)
async def test_nats_paused_longer_than_the_client_timeouts_loses_nothing_and_doubles_nothing(
    env: Env, make_system: MakeSystem, agents: list[dict[str, str]]
) -> None:
    system = await asyncio.to_thread(make_system, env.database_url, env.nats_url)
    assert env.nats.proc is not None
    pid, since = env.nats.proc.pid, datetime.now(CITY_TIMEZONE)
    async with Load(intake=system.url("intake"), workflow=system.url("workflow"), agents=agents) as load:
        await load.acknowledged(10)
        os.kill(pid, signal.SIGSTOP)
        try:
            before = len(load.ledger.cases)
            await asyncio.sleep(PAUSED_SECONDS)
            during = len(load.ledger.cases) - before
        finally:
            os.kill(pid, signal.SIGCONT)
        resumed = time.monotonic()
        healed = await caught_up(env.database_url, load.ledger)
        await load.acknowledged(10)
        await load.stop()  # the agents go through the actions that waited for their cases to open
        drained = time.monotonic() - resumed
    settled = await assert_nothing_lost_or_doubled(system, load.ledger, since=since)
    assert during > 0, "citizens were turned away while the bus was paused"
    print(
        f"\nNATS paused {PAUSED_SECONDS} s ({during} cases acknowledged meanwhile): "
        f"{load.ledger.summary()}; "
        f"every reader caught up {healed:.1f} s after SIGCONT, the agents' backlog done {drained:.1f} s "
        f"after; settled in {settled.seconds:.1f} s; {settled.mails} mails, sent twice "
        f"{settled.resent}"
    )
