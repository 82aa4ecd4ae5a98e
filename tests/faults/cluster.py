"""A NATS cluster of three servers on loopback, JetStream on each with its own store: what production runs
(DESIGN.md, "3 replicas"), small enough for a test. Each node keeps its ports and its store across a
restart, so a node killed and started again rejoins as itself."""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import nats
from nats.js.errors import NotFoundError

from devtools.servers import NatsServer, free_port
from shared.events import STREAM

CLUSTER = "suivi-test"


@dataclass
class Node:
    name: str
    store: Path
    port: int = field(default_factory=free_port)
    route_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def route(self) -> str:
        return f"nats://127.0.0.1:{self.route_port}"

    @property
    def log(self) -> Path:
        return self.store / "nats-server.log"


@dataclass
class NatsCluster:
    root: Path
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.nodes = [Node(name=f"n{i}", store=self.root / f"n{i}") for i in (1, 2, 3)]

    @property
    def url(self) -> str:
        """Every node, comma-separated: the `NATS_URL` the services are given."""
        return ",".join(node.url for node in self.nodes)

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def start(self) -> NatsCluster:
        for node in self.nodes:
            self._launch(node)
        for node in self.nodes:
            self._wait_listening(node)
        return self

    def _launch(self, node: Node) -> None:
        node.store.mkdir(parents=True, exist_ok=True)
        routes = ",".join(other.route for other in self.nodes if other is not node)
        node.proc = subprocess.Popen(
            [
                NatsServer.binary(),
                "-js",
                "-sd",
                str(node.store),
                "-a",
                "127.0.0.1",
                "-p",
                str(node.port),
                "--server_name",
                node.name,
                "--cluster_name",
                CLUSTER,
                "--cluster",
                node.route,
                "--routes",
                routes,
                "-l",
                str(node.log),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _wait_listening(self, node: Node, timeout: float = 30) -> None:
        import socket

        assert node.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if node.proc.poll() is not None:
                raise RuntimeError(f"nats-server {node.name} exited; see {node.log}")
            try:
                with socket.create_connection(("127.0.0.1", node.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nats-server {node.name} did not listen within {timeout} s; see {node.log}")

    def kill(self, name: str) -> None:
        """SIGKILL: the node dies with whatever it had not written."""
        proc = self.node(name).proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    def restart(self, name: str) -> None:
        node = self.node(name)
        self._launch(node)
        self._wait_listening(node)

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.kill()
                node.proc.wait(timeout=10)

    async def wait_for_jetstream(self, timeout: float = 30) -> None:
        """Until the cluster has elected its JetStream meta leader and answers JetStream requests."""
        nc = await nats.connect(self.urls)
        try:
            js = nc.jetstream(timeout=2)
            deadline = time.monotonic() + timeout
            while True:
                try:
                    await js.account_info()
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
        finally:
            await nc.close()

    async def stream_leader(self, *, not_: str | None = None, timeout: float = 30) -> tuple[str, float]:
        """The name of the `CASES` stream's leader (another than `not_`, once elected), and how long it
        took to have one."""
        began = time.monotonic()
        nc = await nats.connect([n.url for n in self.nodes if n.name != not_])
        try:
            js = nc.jetstream(timeout=2)
            while True:
                try:
                    info = await js.stream_info(STREAM)
                    leader = info.cluster.leader if info.cluster else None
                    if leader and leader != not_:
                        return leader, time.monotonic() - began
                except (NotFoundError, TimeoutError, nats.errors.Error):
                    pass
                if time.monotonic() - began > timeout:
                    raise TimeoutError(f"no leader for {STREAM} after {timeout} s")
                await asyncio.sleep(0.1)
        finally:
            await nc.close()

    async def replicas_current(self, *, timeout: float = 60) -> float:
        """Until every replica of `CASES` is current with its leader; returns how long that took."""
        began = time.monotonic()
        nc = await nats.connect(self.urls)
        try:
            js = nc.jetstream(timeout=2)
            while True:
                try:
                    info = await js.stream_info(STREAM)
                    peers = info.cluster.replicas if info.cluster else None
                    if peers is not None and len(peers) == 2 and all(p.current and not p.lag for p in peers):
                        return time.monotonic() - began
                except (TimeoutError, nats.errors.Error):
                    pass
                if time.monotonic() - began > timeout:
                    raise TimeoutError(f"the replicas of {STREAM} did not catch up in {timeout} s")
                await asyncio.sleep(0.2)
        finally:
            await nc.close()
