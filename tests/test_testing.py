"""The private servers the suite starts: a port taken between choosing and binding it.

The suite starts hundreds of servers while its own clients open thousands of outgoing
connections; one CI run lost a sentinel because something took its port first.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import redis

from ratelimit_app.testing import RedisServer, SentinelGroup, free_port


def _ephemeral() -> range:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return range(int(low), int(high) + 1)


def test_free_port_is_outside_the_range_outgoing_connections_take() -> None:
    ports = {free_port() for _ in range(50)}
    assert not ports & set(_ephemeral())


def _squat(port: int) -> socket.socket:
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", port))
    squatter.listen()
    return squatter


def test_a_chosen_port_taken_before_start_is_replaced() -> None:
    server = RedisServer()
    taken = server.port
    with _squat(taken), server:
        assert server.port != taken
        assert server.client().ping()
        port = server.port
        server.stop()
        server.start()  # once started, a restart keeps its port
        assert server.port == port


def test_a_named_port_that_is_taken_fails_with_the_servers_own_words() -> None:
    port = free_port()
    with _squat(port), pytest.raises(RuntimeError, match=f"(?s)port {port}:.*in use"):
        RedisServer(port=port).start()


def test_another_server_answering_on_the_port_is_not_mistaken_for_ours() -> None:
    with RedisServer() as other:
        impostor = RedisServer(port=other.port)
        with pytest.raises(RuntimeError, match="in use"):
            impostor.start()
        assert impostor.process is None
        assert other.client().ping()


def test_a_sentinel_group_follows_a_master_that_had_to_move() -> None:
    group = SentinelGroup()
    taken = group.master.port
    with _squat(taken), group:
        assert group.master.port != taken
        assert group.master_port() == group.master.port
        client = redis.Redis.from_url(f"redis://127.0.0.1:{group.master.port}/0")
        assert client.set("k", "v")
        client.close()
