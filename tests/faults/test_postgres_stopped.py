"""PostgreSQL stopped as by `pg_ctl stop -m immediate` (every backend cut at once, crash recovery at the
next start) while citizens submit and agents act, then started again: the services answer 503 or nothing
meanwhile, never a 500, and once it is back every acknowledged submission and action is there once."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest

from shared.procedures import CITY_TIMEZONE
from tests.conftest import Env
from tests.faults.conftest import MakeSystem
from tests.faults.invariants import Resends, assert_nothing_lost_or_doubled, caught_up
from tests.faults.load import Load

DOWN_SECONDS = 4


@pytest.mark.timeout(150)
async def test_postgresql_stopped_immediately_under_load_loses_nothing_and_doubles_nothing(
    own_env: Env, make_system: MakeSystem, agents: list[dict[str, str]]
) -> None:
    env = own_env  # a server of its own: taking it down cannot take the rest of the suite down
    system = await asyncio.to_thread(make_system, env.database_url, env.nats_url)
    since = datetime.now(CITY_TIMEZONE)
    async with Load(intake=system.url("intake"), workflow=system.url("workflow"), agents=agents) as load:
        await load.acknowledged(10)
        await asyncio.to_thread(env.pg.stop, mode="immediate")
        before = len(load.ledger.cases)
        await asyncio.sleep(DOWN_SECONDS)
        assert len(load.ledger.cases) == before, "a case was acknowledged while PostgreSQL was down"
        began = time.monotonic()
        await asyncio.to_thread(env.pg.start)
        await load.acknowledged(1)
        answering = time.monotonic() - began
        healed = await caught_up(env.database_url, load.ledger)
        await load.acknowledged(10)
    # notify cannot record a mail the server took while PostgreSQL is gone: that one may go again.
    settled = await assert_nothing_lost_or_doubled(
        system, load.ledger, since=since, resends=Resends(unobserved=1)
    )
    print(
        f"\nPostgreSQL stopped {DOWN_SECONDS} s: {load.ledger.summary()}; first case acknowledged "
        f"{answering:.1f} s after the restart began, every reader caught up {healed:.1f} s later; settled "
        f"in {settled.seconds:.1f} s; {settled.mails} mails, sent twice {settled.resent}"
    )
