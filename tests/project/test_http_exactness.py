"""Across processes over HTTP: 4 gunicorn workers on one Redis admit exactly the capacity."""

from __future__ import annotations

import pytest

from project.servers import DemoServer, burst


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
