"""stats' browser tests: a real stats process that has folded a stream of events, a page at a desktop's
width, and what axe finds wrong with it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nats
from axe_playwright_python.sync_playwright import Axe
from nats.js import JetStreamContext
from playwright.sync_api import Browser, Page

from shared.events import EventData
from tests.browser import BLOCKING_IMPACTS
from tests.conftest import Env
from tests.processes import ServiceProcess, service_env
from tests.waiting import eventually, scalar

PHONE, DESKTOP = 390, 1280
# How a test module sends its events to JetStream: the stream sequence of each.
Publish = Callable[[JetStreamContext, list[EventData]], Awaitable[list[int]]]


async def publish_and_settle(env: Env, events: list[EventData], publish: Publish) -> None:
    nc = await nats.connect(env.nats_url)
    try:
        last = (await publish(nc.jetstream(), events))[-1]
    finally:
        await nc.close()
    await eventually(
        lambda: scalar(env.database_url, "SELECT max(stream_seq) FROM stats.consumer_positions"),
        until=lambda reached: reached is not None and reached >= last,
        timeout=90,
    )


def folded_stats(env: Env, log_dir: Path, events: list[EventData], publish: Publish) -> Iterator[str]:
    """A stats process that has folded `events` (sent by `publish`): its URL, for a fixture to yield from."""
    stats = ServiceProcess(
        "services.stats.app", env=service_env(env.database_url, env.nats_url), log_dir=log_dir
    )
    try:
        stats.start()
        with ThreadPoolExecutor(1) as thread:  # the browser tests run in the session's event loop already
            thread.submit(asyncio.run, publish_and_settle(env, events, publish)).result()
        yield stats.url
    finally:
        stats.stop()


def desktop_page(browser: Browser, **options: Any) -> Iterator[Page]:
    """A French page at a desktop's width (`options`: more of the browser context's, such as
    `java_script_enabled`), for a fixture to yield from."""
    context = browser.new_context(locale="fr-FR", viewport={"width": DESKTOP, "height": 900}, **options)
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def serious_violations(page: Page) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in Axe().run(page).response["violations"]
        if v["impact"] in BLOCKING_IMPACTS
    ]
