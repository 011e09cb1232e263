"""Across processes over HTTP: 4 workers on one Redis admit exactly the capacity (gunicorn
for the sync demo, uvicorn for Django's async views)."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest
import redis

from project.servers import DemoServer, burst, running
from ratelimit_app.testing import free_port
from tests.adapters.conftest import stored_tokens


@pytest.mark.slow
def test_four_workers_admit_exactly_fifty_of_three_hundred(
    redis_url: str, key_prefix: str, tmp_path
) -> None:
    env = {
        # the demo's settings, not the ones pytest runs with (the server inherits os.environ)
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "REDIS_URL": redis_url,
        "RATELIMIT_CAPACITY": "50",
        "RATELIMIT_REFILL_RATE": "1e-6",  # one token per ~11 days: none comes back mid-test
        "RATELIMIT_KEY_PREFIX": key_prefix,
        "DJANGO_DB_PATH": str(tmp_path / "db.sqlite3"),
    }
    with DemoServer(env, workers=4) as server:
        counts = burst(server.port, "/api/ping", requests=300, concurrency=50)
        assert counts == {200: 50, 429: 250}, server.output()


@pytest.mark.slow
async def test_django_async_views_on_four_uvicorn_workers_admit_exactly_the_capacity(
    redis_url: str, redis_client: redis.Redis, key_prefix: str, tmp_path: Path
) -> None:
    """The async ``@ratelimit`` view (``/plain/upload``, cost 3) under
    ``uvicorn project.asgi:application --workers 4``: each worker decides on its own
    native async Redis client; 200 requests at once, a capacity of 150, so exactly 50 pass."""
    env = {
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "REDIS_URL": redis_url,
        "RATELIMIT_CAPACITY": "150",
        "RATELIMIT_REFILL_RATE": "1e-6",
        "RATELIMIT_KEY_PREFIX": key_prefix,
        "DJANGO_DB_PATH": str(tmp_path / "db.sqlite3"),
        "DJANGO_DEBUG": "0",
    }
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "project.asgi:application", "--workers", "4",
        "--no-proxy-headers", "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    with running(command, env, port, tmp_path / "log"):
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            url = f"http://127.0.0.1:{port}/plain/upload"
            responses = await asyncio.gather(*(client.post(url) for _ in range(200)))
    codes = Counter(r.status_code for r in responses)
    assert codes == {200: 50, 429: 150}, codes
    # all decided by Redis: no pool ran dry and sent a request to the failure policy
    assert "store failed" not in (tmp_path / "log").read_text()
    tokens = stored_tokens(redis_client, f"{key_prefix}:default:ip:127.0.0.1")
    assert tokens == pytest.approx(0, abs=0.01)
