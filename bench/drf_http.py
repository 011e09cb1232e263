"""Over HTTP, across processes: our DRF throttle against DRF's own ScopedRateThrottle.

The Django demo runs under gunicorn with 4 worker processes sharing one Redis
(``--redis-url``, else ``REDIS_URL``, else a private ``redis-server``). One client fires
300 concurrent GETs at a bucket of capacity 50 that does not refill meanwhile, first at
``/api/ping`` (``TokenBucketThrottle``, one Lua script per decision), then at
``/api/builtin/ping`` (``ScopedRateThrottle`` at 50/hour on django-redis: a get of the
request history, then a set). Exact means 50 answered 200 and 250 answered 429.

    python3 -m bench.drf_http [--runs 3] [--requests 300] [--concurrency 50] [--redis-url URL]

A benchmark, not a test: it prints a table and asserts nothing.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path

import redis

from project.servers import DemoServer, burst
from ratelimit_app.testing import redis_url_or_private

from . import cli
from .tables import markdown_table

CAPACITY = 50
ENDPOINTS = [
    ("ratelimit_app TokenBucketThrottle", "/api/ping", "Lua script (1 round trip)"),
    ("DRF ScopedRateThrottle", "/api/builtin/ping", "cache get + set"),
]


def _clear(url: str) -> None:
    """DRF's history key is fixed per scope and client: drop it between runs."""
    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match="*throttle_builtin_*"):
            client.delete(key)
    finally:
        client.close()


def _cells(name: str, how: str, counts: Counter[int], requests: int, runs: int) -> list[object]:
    ok, denied = counts[200], counts[429]
    other = sum(counts.values()) - ok - denied
    expected = CAPACITY * runs
    return [name, how, requests * runs, ok, denied, other, expected, f"{ok - expected:+}"]


def main() -> None:
    parser = cli.parser(__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    totals: dict[str, Counter[int]] = {path: Counter() for _n, path, _h in ENDPOINTS}
    with redis_url_or_private(args.redis_url) as url, tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            _clear(url)
            env = {
                "REDIS_URL": url,
                "RATELIMIT_CAPACITY": str(CAPACITY),
                "RATELIMIT_REFILL_RATE": "1e-6",
                "RATELIMIT_KEY_PREFIX": f"bench{os.getpid()}r{run}",
                "DRF_BUILTIN_RATE": f"{CAPACITY}/hour",
                "DJANGO_DB_PATH": str(Path(tmp) / "db.sqlite3"),
            }
            with DemoServer(env, workers=4) as server:
                for _name, path, _how in ENDPOINTS:
                    totals[path] += burst(server.port, path, args.requests, args.concurrency)
    print(
        f"gunicorn 4 workers, one Redis; per run {args.requests} concurrent GETs "
        f"({args.concurrency} at a time) from one client; capacity {CAPACITY}, no refill; "
        f"{args.runs} run(s), totals:\n"
    )
    header = ["limiter", "decision", "requests", "200", "429", "other", "expected", "excess"]
    cells = [
        _cells(name, how, totals[path], args.requests, args.runs) for name, path, how in ENDPOINTS
    ]
    print(markdown_table(header, cells, labels=2))


if __name__ == "__main__":
    main()
