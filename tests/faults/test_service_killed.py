"""Each service killed with SIGKILL in turn while citizens submit and agents act, then started again: once
the system has settled, every acknowledged submission and action is there exactly once, everywhere."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from shared.procedures import CITY_TIMEZONE
from tests.conftest import Env
from tests.faults.conftest import MakeSystem
from tests.faults.invariants import Resends, assert_nothing_lost_or_doubled, caught_up, in_flight_messages
from tests.faults.load import Load
from tests.faults.system import SERVICES

# How long the load runs against a dead service before it comes back.
DOWN_SECONDS = 1.5
# The load's requests to each service it sends to: its kill is timed to land in the middle of one.
REQUESTS = {"intake": "submit", "workflow": "act"}


@pytest.mark.timeout(180)
async def test_each_service_killed_under_load_loses_nothing_and_doubles_nothing(
    env: Env, make_system: MakeSystem, agents: list[dict[str, str]]
) -> None:
    system = await asyncio.to_thread(make_system, env.database_url, env.nats_url)
    since, resends, timings = datetime.now(CITY_TIMEZONE), Resends(), {}
    async with Load(intake=system.url("intake"), workflow=system.url("workflow"), agents=agents) as load:
        await load.acknowledged(10)
        for name in SERVICES:
            if name in REQUESTS:
                await load.in_the_middle_of(REQUESTS[name])
            await system.kill(name)
            if name == "notify":  # what it had marked `sending` may have reached the mail server
                resends.in_flight |= await in_flight_messages(env.database_url)
            await asyncio.sleep(DOWN_SECONDS)
            ready = await system.restart(name)
            timings[name] = (ready, await caught_up(env.database_url, load.ledger))
        await load.acknowledged(5)
    settled = await assert_nothing_lost_or_doubled(system, load.ledger, since=since, resends=resends)
    print(
        f"\nkilled each service: {load.ledger.summary()}; restart and catch-up (s) "
        f"{ {n: (round(r, 1), round(c, 1)) for n, (r, c) in timings.items()} }; settled in "
        f"{settled.seconds:.1f} s; {settled.mails} mails, sent twice {settled.resent} "
        f"(in flight at notify's kill: {len(resends.in_flight)})"
    )
