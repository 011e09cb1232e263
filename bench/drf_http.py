"""Over HTTP, across processes: our DRF throttle against DRF's own ScopedRateThrottle.

The Django demo runs under gunicorn with 4 worker processes sharing one Redis (a private
``redis-server``, or ``REDIS_URL``). One client fires 300 concurrent GETs at a bucket of
capacity 50 that does not refill meanwhile, first at ``/api/ping``
(``TokenBucketThrottle``, one Lua script per decision), then at ``/api/builtin/ping``
(``ScopedRateThrottle`` at 50/hour on django-redis: a get of the request history, then a
set). Exact means 50 answered 200 and 250 answered 429.

    python3 bench/drf_http.py [--runs 3] [--requests 300] [--concurrency 50]

A benchmark, not a test: it prints a table and asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from project.servers import DemoServer, burst  # noqa: E402
from ratelimit_app.testing import RedisServer  # noqa: E402

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


def _row(name: str, how: str, counts: Counter[int], requests: int, runs: int) -> str:
    ok, denied = counts[200], counts[429]
    other = sum(counts.values()) - ok - denied
    expected = CAPACITY * runs
    return (
        f"| {name:<34} | {how:<25} | {requests * runs:>8} | {ok:>5} | {denied:>5} | "
        f"{other:>5} | {expected:>8} | {ok - expected:>+7} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    totals: dict[str, Counter[int]] = {path: Counter() for _n, path, _h in ENDPOINTS}
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("REDIS_URL") or stack.enter_context(RedisServer()).url
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
    print(
        "| limiter                            | decision                  | requests |   200 |"
        "   429 | other | expected |  excess |"
    )
    print("|" + "|".join("-" * w for w in (36, 27, 10, 7, 7, 7, 10, 9)) + "|")
    for name, path, how in ENDPOINTS:
        print(_row(name, how, totals[path], args.requests, args.runs))


if __name__ == "__main__":
    main()
