"""Another city system reads the CASES stream itself, with the ten lines of nats-py the README shows: a
durable pull consumer of its own filtered on one procedure, fetch, parse the JSON, ack. The test runs that
very code, as a process of its own, against the test's NATS, and sees the case intake published."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import nats

from tests.builders import make_case
from tests.conftest import Env
from tests.waiting import eventually

REPO = Path(__file__).resolve().parents[2]

# Verbatim in README.md ("Subscribing to the case events directly"): change both together.
SNIPPET = """\
import asyncio
import json
import os

import nats


async def main() -> None:
    nc = await nats.connect(os.environ.get("NATS_URL", "nats://127.0.0.1:24222"))
    # A durable consumer of your own: JetStream remembers what it acknowledged, across restarts.
    sub = await nc.jetstream().pull_subscribe("case.permis-construire.>", durable="sig-urbanisme")
    while True:
        try:
            messages = await sub.fetch(batch=20, timeout=5)
        except TimeoutError:  # nothing new for 5 s
            continue
        for msg in messages:
            event = json.loads(msg.data)  # a CloudEvent: id, type, subject (the case id), time, data
            print(event["type"], event["procedure"], event["subject"], flush=True)
            await msg.ack()  # once your own effect is durable; a redelivery repeats event["id"]


asyncio.run(main())
"""


async def _first_line(proc: asyncio.subprocess.Process, *, timeout: float = 30) -> str:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout)
    return line.decode().strip()


async def test_the_readme_subscriber_receives_a_permit_case_and_acks_it(
    env: Env, intake: httpx.AsyncClient, tmp_path: Path
) -> None:
    street_light = await intake.post("/v1/cases", json=make_case("signalement-voirie"))
    permit = await intake.post("/v1/cases", json=make_case("permis-construire"))
    assert street_light.status_code == permit.status_code == 201
    script = tmp_path / "subscriber.py"
    script.write_text(SNIPPET, encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        env={**env.variables(), "NATS_URL": env.nats_url},
        stdout=asyncio.subprocess.PIPE,
    )
    nc = await nats.connect(env.nats_url)
    try:
        # The street light's case is not on case.permis-construire.>: the permit's event comes first.
        assert await _first_line(proc) == (
            f"fr.suivi.case.submitted.v1 permis-construire {permit.json()['case_id']}"
        )
        js = nc.jetstream()
        info = await eventually(
            lambda: js.consumer_info("CASES", "sig-urbanisme"),
            until=lambda info: info.num_ack_pending == 0 and info.ack_floor.stream_seq > 0,
        )
        assert info.num_ack_pending == 0 and info.num_pending == 0, "acknowledged, nothing left"
        assert info.config.filter_subject == "case.permis-construire.>"
    finally:
        await nc.close()
        proc.terminate()
        await proc.wait()


def test_the_readme_shows_the_tested_snippet() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert SNIPPET in readme, "README.md's nats-py subscriber differs from the one this file runs"
