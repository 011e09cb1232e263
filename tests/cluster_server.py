"""A real three-master Redis Cluster on loopback, built from the tests' ``redis-server``.

Each master is a ``RedisServer`` with cluster mode on and its own directory, so
``restart_master(i)`` brings a killed master back on the same port with the same
``nodes.conf``: it rejoins and serves its slots again. There are no replicas, so a killed
master's slots stay unserved until it returns, which is the outage the fault drills need.
``cluster-require-full-coverage no`` lets the live masters keep serving their own slots
meanwhile (the setting a rate limiter's cluster wants).
"""

from __future__ import annotations

import random
import shutil
import socket
import time
from collections.abc import Iterable

import redis
import redis.asyncio.cluster as acluster
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

from ratelimit_app.testing import RedisServer

SLOTS = 16384
BUS_OFFSET = 10000  # Redis 6.2 puts the cluster bus on port + 10000, fixed
_PORT_RANGE = (15000, 22000)  # port and bus port both stay below the ephemeral range
_ADDSLOTS_CHUNK = 1000


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def cluster_port(taken: Iterable[int] = ()) -> int:
    """A port whose cluster-bus twin (port + 10000) is free too."""
    used = set(taken)
    for _ in range(200):
        port = random.randint(*_PORT_RANGE)
        if port not in used and _bindable(port) and _bindable(port + BUS_OFFSET):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def slot_ranges(masters: int) -> list[range]:
    """The 16384 slots cut into ``masters`` contiguous ranges."""
    bounds = [SLOTS * i // masters for i in range(masters + 1)]
    return [range(bounds[i], bounds[i + 1]) for i in range(masters)]


class RedisClusterServer:
    """``masters`` cluster-enabled redis-servers, met and given every slot by hand."""

    def __init__(self, masters: int = 3, node_timeout_ms: int = 1000) -> None:
        self.nodes: list[RedisServer] = []
        ports: list[int] = []
        for _ in range(masters):
            ports.append(cluster_port(ports))
            extra = (
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(node_timeout_ms),
                "--cluster-require-full-coverage", "no",
            )  # fmt: skip
            self.nodes.append(RedisServer(port=ports[-1], extra=extra))

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    @property
    def startup_nodes(self) -> list[ClusterNode]:
        return [ClusterNode("127.0.0.1", port) for port in self.ports]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    @property
    def cluster_url(self) -> str:
        """The cluster by URL alone, as ``STORAGE_URL`` / ``RATELIMIT['STORE']`` take it."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def client(self, **kwargs: object) -> RedisCluster:
        return RedisCluster(startup_nodes=self.startup_nodes, **kwargs)  # type: ignore[arg-type]

    def async_client(self, **kwargs: object) -> acluster.RedisCluster:
        nodes = [acluster.ClusterNode("127.0.0.1", port) for port in self.ports]
        return acluster.RedisCluster(startup_nodes=nodes, **kwargs)  # type: ignore[arg-type]

    def node_client(self, i: int, **kwargs: object) -> redis.Redis:
        """A plain connection to master ``i`` (for CLUSTER and SCRIPT commands, DBSIZE...)."""
        return self.nodes[i].client(**kwargs)

    def start(self, timeout: float = 20.0) -> RedisClusterServer:
        try:
            for node in self.nodes:
                node.start()
            self._meet_and_assign()
            self.wait_ok(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _meet_and_assign(self) -> None:
        first = self.node_client(0)
        try:
            for port in self.ports[1:]:
                first.execute_command("CLUSTER", "MEET", "127.0.0.1", port)
        finally:
            first.close()
        for i, slots in enumerate(slot_ranges(len(self.nodes))):
            conn = self.node_client(i)
            try:
                for start in range(slots.start, slots.stop, _ADDSLOTS_CHUNK):
                    chunk = range(start, min(start + _ADDSLOTS_CHUNK, slots.stop))
                    conn.execute_command("CLUSTER", "ADDSLOTS", *chunk)
            finally:
                conn.close()

    def wait_ok(self, timeout: float = 20.0, only: Iterable[int] | None = None) -> None:
        """Until every node (or those in ``only``) sees all nodes and cluster_state:ok."""
        which = list(range(len(self.nodes)) if only is None else only)
        deadline = time.monotonic() + timeout
        while not all(self._node_ok(i) for i in which):
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster not ok within {timeout}s on ports {self.ports}")
            time.sleep(0.05)

    def _node_ok(self, i: int) -> bool:
        conn = self.node_client(i, socket_timeout=1.0, socket_connect_timeout=1.0)
        try:
            info = conn.execute_command("CLUSTER", "INFO")
            text = info.decode() if isinstance(info, bytes) else str(info)
            fields = dict(line.split(":", 1) for line in text.split() if ":" in line)
            return (
                fields.get("cluster_state") == "ok"
                and fields.get("cluster_slots_ok") == str(SLOTS)
                and fields.get("cluster_known_nodes") == str(len(self.nodes))
            )
        except redis.RedisError:
            return False
        finally:
            conn.close()

    def master_for(self, key: str) -> int:
        """Index of the master whose slot range holds ``key``."""
        slot = key_slot(key.encode())
        for i, slots in enumerate(slot_ranges(len(self.nodes))):
            if slot in slots:
                return i
        raise AssertionError(f"slot {slot} out of range")  # pragma: no cover

    def kill_master(self, i: int) -> None:
        self.nodes[i].stop()

    def restart_master(self, i: int, timeout: float = 20.0) -> None:
        """Start master ``i`` again on its port with its nodes.conf; wait for cluster ok."""
        self.nodes[i].start()
        self.wait_ok(timeout)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def cleanup(self) -> None:
        self.stop()
        for node in self.nodes:
            shutil.rmtree(node.dir, ignore_errors=True)

    def __enter__(self) -> RedisClusterServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
