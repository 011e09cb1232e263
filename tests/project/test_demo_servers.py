"""The Flask and FastAPI demos as real servers: multi-worker exactness on one Redis.

Each server runs in its own process group on a free loopback port and is always killed;
readiness is polled with a deadline. The tests assert counts, never durations.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis

from project.servers import stop_group
from ratelimit_app.testing import free_port
from tests.adapters.conftest import stored_tokens

ROOT = Path(__file__).resolve().parent.parent.parent
BURST = 200
CAPACITY = 50


@contextmanager
def server(command: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[None]:
    """Start ``command``, wait until ``/health`` answers, and always kill it.

    Output goes to the file ``log``, so a chatty server never blocks on a full pipe.
    """
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, start_new_session=True,
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_ready(process, port, log)
        yield
    finally:
        stop_group(process)


def _wait_ready(
    process: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} not ready after {timeout}s:\n{log.read_text()}")


def _burst(port: int, n: int = BURST) -> list[int]:
    """``n`` concurrent pings from one client (32 threads, one connection pool), each
    claiming a different X-Forwarded-For: with no trusted proxy they share one bucket."""
    url = f"http://127.0.0.1:{port}/api/ping"
    limits = httpx.Limits(max_connections=32)

    def ping(i: int) -> int:
        return client.get(url, headers={"X-Forwarded-For": f"203.0.113.{i % 250}"}).status_code

    with httpx.Client(timeout=30, limits=limits) as client, ThreadPoolExecutor(32) as pool:
        return list(pool.map(ping, range(n)))


def _env(redis_url: str, key_prefix: str) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "RATELIMIT_CAPACITY": str(CAPACITY),
        "RATELIMIT_REFILL_RATE": "0.000001",
        "RATELIMIT_KEY_PREFIX": key_prefix,
    }


SERVERS = {
    # uvicorn trusts X-Forwarded-For from 127.0.0.1 by default and rewrites the client
    # address; the demo is meant to be run without a proxy, so turn that off.
    "fastapi-uvicorn-4": [
        "-m",
        "uvicorn",
        "project.fastapi_app:app",
        "--workers",
        "4",
        "--no-proxy-headers",
    ],
    "flask-gunicorn-4": ["-m", "gunicorn", "-w", "4", "project.flask_app:app"],
}


def _command(name: str, port: int) -> list[str]:
    if name.startswith("fastapi"):
        return [sys.executable, *SERVERS[name], "--host", "127.0.0.1", "--port", str(port)]
    return [sys.executable, *SERVERS[name], "-b", f"127.0.0.1:{port}"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SERVERS))
def test_four_workers_on_one_redis_admit_exactly_capacity(
    name: str, redis_url: str, redis_client: redis.Redis, key_prefix: str, tmp_path: Path
) -> None:
    port, log = free_port(), tmp_path / "log"
    with server(_command(name, port), _env(redis_url, key_prefix), port, log):
        codes = _burst(port)
    assert codes.count(200) == CAPACITY
    assert codes.count(429) == BURST - CAPACITY
    # one first line per worker, the rest counted into summaries (not one line each)
    assert 1 <= log.read_text().count("rate limited: policy=default identity=") <= 4
    key = f"{key_prefix}:default:127.0.0.1"
    assert stored_tokens(redis_client, key) == pytest.approx(0, abs=0.01)


@pytest.mark.slow
def test_flask_demo_runs_as_a_script_and_logs_denials(tmp_path: Path) -> None:
    """``python project/flask_app.py --port N`` on memory: 5 pings, then a logged 429."""
    port = free_port()
    env = {"REDIS_URL": "", "RATELIMIT_REFILL_RATE": "0.001"}
    command = [sys.executable, "project/flask_app.py", "--port", str(port)]
    log = tmp_path / "log"
    with server(command, env, port, log):
        codes = [httpx.get(f"http://127.0.0.1:{port}/api/ping").status_code for _ in range(6)]
        upload = httpx.post(f"http://127.0.0.1:{port}/api/upload")
    output = log.read_text()
    assert codes == [200] * 5 + [429]
    assert upload.status_code == 200
    assert upload.headers["X-RateLimit-Remaining"] == "2"
    assert "rate limited: policy=default" in output
