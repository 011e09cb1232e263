"""The Flask and FastAPI demos under their multi-worker servers: exact on one Redis, and
a warning (not silence) on per-process memory.

Each server runs in its own process group on a free loopback port and is always killed;
readiness is polled with a deadline. The tests assert counts, never durations.
"""

from __future__ import annotations

import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis

from project.servers import running
from ratelimit_app.testing import free_port
from tests.adapters.conftest import stored_tokens

BURST = 200
CAPACITY = 50


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
    "fastapi-uvicorn": ["-m", "uvicorn", "project.fastapi_app:app", "--no-proxy-headers"],
    "flask-gunicorn": ["-m", "gunicorn", "project.flask_app:app"],
}


def _command(name: str, port: int, workers: int) -> list[str]:
    if name.startswith("fastapi"):
        where = ["--host", "127.0.0.1", "--port", str(port)]
    else:
        where = ["-b", f"127.0.0.1:{port}"]
    return [sys.executable, *SERVERS[name], "--workers", str(workers), *where]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SERVERS))
def test_four_workers_on_one_redis_admit_exactly_capacity(
    name: str, redis_url: str, redis_client: redis.Redis, key_prefix: str, tmp_path: Path
) -> None:
    port, log = free_port(), tmp_path / "log"
    with running(_command(name, port, 4), _env(redis_url, key_prefix), port, log):
        codes = _burst(port)
    assert codes.count(200) == CAPACITY
    assert codes.count(429) == BURST - CAPACITY
    # one first line per worker, the rest counted into summaries (not one line each),
    # logged at the latest when the worker exits: every denial is accounted for
    text = log.read_text()
    first = text.count("outcome=denied")
    assert 1 <= first <= 4, text
    summaries = [int(n) for n in re.findall(r"identity=\S+ repeated=(\d+)", text)]
    assert len(summaries) <= 4, text
    assert first + sum(summaries) == BURST - CAPACITY, text
    assert "process memory" not in log.read_text()  # shared buckets: nothing to warn of
    key = f"{key_prefix}:default:127.0.0.1"
    assert stored_tokens(redis_client, key) == pytest.approx(0, abs=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SERVERS))
def test_several_workers_on_memory_say_so_at_start_up(name: str, tmp_path: Path) -> None:
    """Without Redis each worker keeps its own buckets: each one logs that, once."""
    port, log = free_port(), tmp_path / "log"
    warning = "rate-limit buckets are in process memory"
    with running(_command(name, port, 2), {"REDIS_URL": ""}, port, log):
        deadline = time.monotonic() + 60  # the second worker may start after the first
        while log.read_text().count(warning) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    text = log.read_text()
    assert text.count(warning) == 2, text
    assert "2 worker processes" in text
