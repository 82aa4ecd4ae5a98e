"""A three-node NATS cluster, the `CASES` stream at 3 replicas, the services given all three URLs: the
stream's leader is killed with SIGKILL while citizens submit and agents act, another is elected, the
services carry on through the other nodes; the node is started again and catches up. Every acknowledged
submission and action is there once."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import nats
import pytest

from shared.bus import servers_of
from shared.events import STREAM
from shared.procedures import CITY_TIMEZONE
from tests.faults.cluster import NatsCluster
from tests.faults.conftest import MakeSystem
from tests.faults.invariants import assert_nothing_lost_or_doubled, caught_up
from tests.faults.load import Load


async def _replicas(cluster: NatsCluster) -> int:
    nc = await nats.connect(cluster.urls)
    try:
        return int((await nc.jetstream().stream_info(STREAM)).config.num_replicas or 1)
    finally:
        await nc.close()


@pytest.mark.timeout(180)
async def test_the_stream_leader_killed_under_load_loses_nothing_and_doubles_nothing(
    database: str, nats_cluster: NatsCluster, make_system: MakeSystem, agents: list[dict[str, str]]
) -> None:
    await nats_cluster.wait_for_jetstream()
    system = await asyncio.to_thread(make_system, database, nats_cluster.url, STREAM_REPLICAS="3")
    assert await _replicas(nats_cluster) == 3
    leader, _ = await nats_cluster.stream_leader()
    since = datetime.now(CITY_TIMEZONE)
    async with Load(intake=system.url("intake"), workflow=system.url("workflow"), agents=agents) as load:
        await load.acknowledged(10)
        began = time.monotonic()
        await asyncio.to_thread(nats_cluster.kill, leader)
        elected, election = await nats_cluster.stream_leader(not_=leader)
        healed = await caught_up(database, load.ledger)
        await load.acknowledged(10)
        await asyncio.to_thread(nats_cluster.restart, leader)
        rejoined = await nats_cluster.replicas_current()
        down = time.monotonic() - began
        await load.acknowledged(10)
    settled = await assert_nothing_lost_or_doubled(system, load.ledger, since=since)
    print(
        f"\nstream leader {leader} killed: {elected} elected in {election:.1f} s, every reader caught up "
        f"{healed:.1f} s after; {leader} restarted after {down:.1f} s, current again in {rejoined:.1f} s; "
        f"{load.ledger.summary()}; settled in {settled.seconds:.1f} s; {settled.mails} mails, "
        f"sent twice {settled.resent}"
    )


def test_nats_url_may_name_every_node_of_a_cluster() -> None:
    assert servers_of("nats://a:4222") == ["nats://a:4222"]
    assert servers_of(" nats://a:4222, nats://b:4222,,nats://c:4222 ") == [
        "nats://a:4222",
        "nats://b:4222",
        "nats://c:4222",
    ]
    with pytest.raises(ValueError, match="no server"):
        servers_of(" , ")
