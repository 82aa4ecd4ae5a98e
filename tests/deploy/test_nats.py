"""Each service's NATS user (deploy/k8s/nats/values.yaml) may use exactly the subjects its code uses.

What the code uses is derived from the code: the durable consumer each service's `make_consumer` builds
(its name: create it, fetch from it, acknowledge, and delete it for a service with a rebuild), the
events a writer's outbox relay publishes (those whose source is the service), the figures bucket stats
keeps and tracking reads, the stream every service creates or updates at start-up, and the inbox where
JetStream answers. The users' permissions must be exactly those. Then a nats-server runs with the
values' authorization block and JetStream, and each service's own calls (shared.bus, its consumer, its
publications, the figures) run as its user: they must all work, and a subject or consumer of another
service must be refused. The chart's other values are checked against the design: 3 servers, JetStream
on persistent volumes, fsync always, one server per node; the stream's replicas come from STREAM_REPLICAS.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import logging
import os
import secrets
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from devtools.servers import NatsServer, free_port
from services.tracking.figures import FiguresCache
from services.workflow.clock import SystemClock
from shared import bus
from shared.bus import FIGURES_BUCKET, PullConsumer
from shared.events import STREAM, EventData, event_types, subject_for
from shared.procedures import load_catalogue
from shared.runtime import Runtime
from shared.settings import ServiceSettings
from tests.deploy import kustomize
from tests.deploy.manifests import (
    K8S,
    NAMESPACE,
    REPO,
    SERVICES,
    containers,
    env_entries,
    find,
    rendered,
    resolve,
    secret_examples,
)

VALUES = K8S / "nats" / "values.yaml"
INBOX = "_INBOX.>"
KV_STREAM = f"KV_{FIGURES_BUCKET}"
PROCEDURE = "permis-construire"


# What the code uses


def build_consumer(service: str, js: JetStreamContext | None) -> PullConsumer:
    """The consumer the service's own `make_consumer` builds on `js` (no pool: it is not run here)."""
    module = importlib.import_module(f"services.{service}.consumers")
    runtime = Runtime(settings=ServiceSettings(), pool=None, nc=None, js=js)  # type: ignore[arg-type]
    available = {"catalogue": load_catalogue(REPO / "procedures"), "clock": SystemClock()}
    wanted = [name for name in inspect.signature(module.make_consumer).parameters if name != "runtime"]
    consumer: PullConsumer = module.make_consumer(runtime, **{name: available[name] for name in wanted})
    return consumer


@cache
def consumer_of(service: str) -> PullConsumer:
    return build_consumer(service, None)


def source_of(service: str) -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in (REPO / "services" / service).glob("*.py"))


def publishes(service: str) -> list[type[EventData]]:
    """The events the service's outbox relay publishes: a writer's own (their source is the service)."""
    if "OutboxRelay(" not in (REPO / "services" / service / "app.py").read_text(encoding="utf-8"):
        return []
    return [cls for cls in event_types().values() if cls.source == f"suivi/{service}"]


def rebuilds(service: str) -> bool:
    rebuild = REPO / "services" / service / "rebuild.py"
    return rebuild.is_file() and "projection.rebuild(" in rebuild.read_text(encoding="utf-8")


def expected_publish(service: str) -> set[str]:
    name = consumer_of(service).name
    allowed = {f"$JS.API.STREAM.{verb}.{STREAM}" for verb in ("INFO", "CREATE", "UPDATE")}  # ensure_stream
    allowed |= {
        f"$JS.API.CONSUMER.CREATE.{STREAM}.{name}",  # several filters
        f"$JS.API.CONSUMER.CREATE.{STREAM}.{name}.>",  # one filter, appended by nats-py
        f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{name}",  # fetch
        f"$JS.ACK.{STREAM}.{name}.>",  # ack, nak, term
    }
    if rebuilds(service):
        allowed.add(f"$JS.API.CONSUMER.DELETE.{STREAM}.{name}")
    allowed |= {f"case.*.*.{event.name}" for event in publishes(service)}
    code = source_of(service)
    if "figures_bucket(" in code:  # keeps the bucket: creates it, puts the figures
        allowed |= {
            f"$JS.API.STREAM.INFO.{KV_STREAM}",
            f"$JS.API.STREAM.CREATE.{KV_STREAM}",
            f"$KV.{FIGURES_BUCKET}.>",
        }
    elif "FIGURES_BUCKET" in code:  # reads it: a direct get if the bucket allows it, else a message get
        allowed |= {
            f"$JS.API.STREAM.INFO.{KV_STREAM}",
            f"$JS.API.STREAM.MSG.GET.{KV_STREAM}",
            f"$JS.API.DIRECT.GET.{KV_STREAM}.>",
        }
    return allowed


# What the values say


@cache
def values() -> dict[str, Any]:
    loaded: dict[str, Any] = kustomize.load_documents(VALUES)[0]
    return loaded


def users() -> dict[str, dict[str, Any]]:
    return {user["user"]: user for user in values()["config"]["merge"]["authorization"]["users"]}


def password_variable(user: dict[str, Any]) -> str:
    raw: str = user["password"]
    assert raw.startswith("<< $") and raw.endswith(" >>"), f"{user['user']}: the password is `<< $VAR >>`"
    return raw[4:-3]


@pytest.mark.parametrize("service", SERVICES)
def test_each_services_user_may_publish_and_subscribe_exactly_what_its_code_uses(service: str) -> None:
    user = users().get(service)
    assert user is not None, f"deploy/k8s/nats/values.yaml has no user {service!r}"
    publish = set(user["permissions"]["publish"]["allow"])
    expected = expected_publish(service)
    refused, needless = sorted(expected - publish), sorted(publish - expected)
    assert not refused, f"{service} uses, but may not publish to: {refused}"
    assert not needless, f"{service} may publish to, but does not use: {needless}"
    assert set(user["permissions"]["publish"]) == {"allow"}
    assert user["permissions"]["subscribe"] == {"allow": [INBOX]}, "JetStream's answers only"


@pytest.mark.parametrize("service", SERVICES)
def test_each_services_password_comes_from_a_secret_on_both_sides(service: str) -> None:
    variable = password_variable(users()[service])
    ref = values()["container"]["env"][variable]["valueFrom"]["secretKeyRef"]
    assert ref["key"] in secret_examples()[("nats", ref["name"])], f"secret.example.yaml: {ref}"
    deployment = find(rendered("production"), "Deployment", service, NAMESPACE)
    assert deployment is not None
    entry = env_entries(containers(deployment)[0])["NATS_URL"]
    url = urlsplit(resolve(rendered("production"), entry, secrets="example"))
    assert (url.username, url.hostname, url.port) == (service, "nats.nats.svc", 4222), f"{service}: NATS_URL"


def test_the_servers_are_a_cluster_of_three_with_jetstream_on_disk_fsynced_on_every_write() -> None:
    config = values()["config"]
    assert config["cluster"]["enabled"] is True and config["cluster"]["replicas"] == 3
    jetstream = config["jetstream"]
    assert (
        jetstream["enabled"]
        and jetstream["fileStore"]["enabled"]
        and jetstream["fileStore"]["pvc"]["enabled"]
    )
    assert jetstream["merge"]["sync_interval"] == "always"
    spread = values()["podTemplate"]["topologySpreadConstraints"]["kubernetes.io/hostname"]
    assert spread["whenUnsatisfiable"] == "DoNotSchedule"
    (anti,) = values()["podTemplate"]["merge"]["spec"]["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert anti["topologyKey"] == "kubernetes.io/hostname"
    # The services' NetworkPolicies select the servers by a part of the chart's labels.
    policy = find(rendered("production"), "NetworkPolicy", "intake", NAMESPACE)
    assert policy is not None
    nats = [
        peer["podSelector"]["matchLabels"]
        for rule in policy["spec"]["egress"]
        for peer in rule["to"]
        if peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
        == "nats"
    ]
    assert nats and nats[0].items() <= anti["labelSelector"]["matchLabels"].items()


def stream_replicas(overlay: str) -> set[int]:
    docs = rendered(overlay)
    return {
        int(resolve(docs, env_entries(box)["STREAM_REPLICAS"], secrets="stand-in"))
        for doc in docs
        if doc["kind"] == "Deployment" and doc["metadata"]["namespace"] == NAMESPACE
        for box in containers(doc)
    }


def test_the_stream_has_three_replicas_in_production_and_one_on_the_dev_server() -> None:
    assert stream_replicas("production") == {values()["config"]["cluster"]["replicas"]} == {3}
    dev = kustomize.load_documents(K8S / "nats" / "values-dev.yaml")[0]
    assert dev["config"]["cluster"]["enabled"] is False
    assert stream_replicas("dev") == {1}


# The permissions at work


def nats_conf(*, port: int, store: Path) -> str:
    """The values' authorization block as nats-server reads it (the chart's `<< ... >>`: unquoted)."""
    text = json.dumps({"authorization": values()["config"]["merge"]["authorization"]}, indent=1)
    for user in users().values():
        text = text.replace(json.dumps(user["password"]), "$" + password_variable(user))
    jetstream = {"store_dir": str(store), **values()["config"]["jetstream"]["merge"]}
    return f"port: {port}\nhost: 127.0.0.1\nserver_name: suivi-permissions\njetstream: {json.dumps(jetstream)}\n{text}\n"


@pytest.fixture(scope="module")
def nats_with_users(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A nats-server with the values' users; each user's URL."""
    store = tmp_path_factory.mktemp("nats-users")
    port = free_port()
    (store / "nats.conf").write_text(nats_conf(port=port, store=store / "js"), encoding="utf-8")
    passwords = {name: secrets.token_hex(32) for name in users()}
    env = {**os.environ, **{password_variable(users()[n]): p for n, p in passwords.items()}}
    proc = subprocess.Popen(
        [NatsServer.binary(), "-c", str(store / "nats.conf"), "-l", str(store / "nats.log")],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, (store / "nats.log").read_text(encoding="utf-8")[-2000:]
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nats-server did not start"
                time.sleep(0.05)
        yield {name: f"nats://{name}:{password}@127.0.0.1:{port}" for name, password in passwords.items()}
    finally:
        proc.kill()
        proc.wait()


async def connected(url: str, name: str) -> tuple[NATS, JetStreamContext]:
    nc = await bus.connect(url, name=name)
    return nc, nc.jetstream()


@pytest.fixture
async def clients(nats_with_users: dict[str, str]) -> AsyncIterator[dict[str, tuple[NATS, JetStreamContext]]]:
    made = {name: await connected(url, name) for name, url in nats_with_users.items()}
    yield made
    for nc, _ in made.values():
        await nc.close()


async def refused(nc: NATS, subject: str, caplog: pytest.LogCaptureFixture) -> bool:
    """Whether the server answers a publication on `subject` with a permissions violation."""
    caplog.clear()
    await nc.publish(subject, b"{}")
    await nc.flush(timeout=2)
    await asyncio.sleep(0.05)
    return any("permissions violation" in record.getMessage().lower() for record in caplog.records)


async def test_each_service_does_its_nats_calls_as_its_own_user_and_no_other(
    clients: dict[str, tuple[NATS, JetStreamContext]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="shared.bus")
    for service in SERVICES:  # every service makes sure of the stream at start-up
        await bus.ensure_stream(clients[service][1], replicas=1)
    for service in SERVICES:  # each creates its durable consumer on its own connection
        await build_consumer(service, clients[service][1]).ensure()
    case = uuid.uuid4()
    for service in SERVICES:
        for event in publishes(service):
            await clients[service][1].publish(
                subject_for(procedure=PROCEDURE, case_id=case, event=event), b"{}"
            )
    for service in SERVICES:  # each fetches from its own consumer and acknowledges
        js = clients[service][1]
        sub = await js.pull_subscribe_bind(durable=consumer_of(service).name, stream=STREAM)
        (message,) = await sub.fetch(1, timeout=5)
        await message.ack_sync(timeout=2)
        assert (
            await clients["admin"][1].consumer_info(STREAM, consumer_of(service).name)
        ).num_ack_pending == 0

    stats_kv = await bus.figures_bucket(clients["stats"][1], replicas=1)
    await stats_kv.put(f"forecast.{PROCEDURE}", json.dumps({"procedure": PROCEDURE}).encode())
    figures = FiguresCache(clients["tracking"][0])
    assert await figures.forecast(PROCEDURE) == {"procedure": PROCEDURE}, "tracking reads stats' figures"

    for service in SERVICES:
        nc = clients[service][0]
        others = [e for e in event_types().values() if e not in publishes(service)]
        assert await refused(nc, subject_for(procedure=PROCEDURE, case_id=case, event=others[0]), caplog), (
            service
        )
        other = next(s for s in SERVICES if s != service)
        assert await refused(nc, f"$JS.API.CONSUMER.DELETE.{STREAM}.{consumer_of(other).name}", caplog), (
            service
        )
        assert await refused(nc, f"$JS.API.STREAM.DELETE.{STREAM}", caplog), service
    assert await refused(clients["tracking"][0], f"$KV.{FIGURES_BUCKET}.forecast.{PROCEDURE}", caplog)

    for service in (s for s in SERVICES if rebuilds(s)):
        assert await clients[service][1].delete_consumer(STREAM, consumer_of(service).name), service
