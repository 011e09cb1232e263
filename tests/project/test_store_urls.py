"""The Flask and FastAPI demos on a Sentinel-managed master and on a Cluster, each named
by its URL alone (``REDIS_URL``, which the demos pass as ``STORAGE_URL``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from project.servers import running
from ratelimit_app.core.stores.from_url import StorageOptions, close_sync_store, make_sync_store
from ratelimit_app.testing import SentinelGroup, free_port
from tests.cluster_server import RedisClusterServer

pytestmark = pytest.mark.slow

DEMOS = {
    "flask-gunicorn": ["-m", "gunicorn", "-w", "2", "project.flask_app:app", "-b"],
    "fastapi-uvicorn": [
        "-m", "uvicorn", "project.fastapi_app:app", "--no-proxy-headers", "--workers", "2",
        "--host", "127.0.0.1", "--port",
    ],
}  # fmt: skip


def _command(name: str, port: int) -> list[str]:
    where = f"127.0.0.1:{port}" if name.startswith("flask") else str(port)
    return [sys.executable, *DEMOS[name], where]


def store_url(kind: str, request: pytest.FixtureRequest) -> str:
    if kind == "sentinel":
        group: SentinelGroup = request.getfixturevalue("sentinel_group")
        return group.url
    cluster: RedisClusterServer = request.getfixturevalue("redis_cluster")
    return cluster.cluster_url


@pytest.mark.parametrize("kind", ["sentinel", "cluster"])
@pytest.mark.parametrize("name", sorted(DEMOS))
def test_a_demo_serves_from_a_store_named_by_url(
    name: str, kind: str, request: pytest.FixtureRequest, key_prefix: str, tmp_path: Path
) -> None:
    url = store_url(kind, request)
    env = {"REDIS_URL": url, "RATELIMIT_KEY_PREFIX": key_prefix, "RATELIMIT_REFILL_RATE": "1e-6"}
    port = free_port()
    with running(_command(name, port), env, port, tmp_path / "log"):
        base = f"http://127.0.0.1:{port}"
        upload = httpx.post(base + "/api/upload", timeout=30)  # 3 of the client's 5 tokens
        codes = [httpx.get(base + "/api/ping", timeout=30).status_code for _ in range(4)]
    assert upload.status_code == 200 and codes == [200] * 2 + [429] * 2
    # the buckets are in that store, where the demo's URL pointed
    store: Any = make_sync_store(StorageOptions(url=url))
    try:
        state = store.get_state(f"{key_prefix}:default:127.0.0.1")
        assert state is not None and state.tokens < 1
    finally:
        close_sync_store(store)
