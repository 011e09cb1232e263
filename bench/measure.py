"""The peers' workloads beyond raw rates: the exactness race, the keys Redis costs are
measured over, and Redis memory per bucket.

How round trips and commands are counted is said in ``costs``.
"""

from __future__ import annotations

import threading
import time

import redis

from .contract import Decide, Quota
from .peer_adapters import build


def admit_in_threads(decide: Decide, key: str, threads: int, attempts: int, at: float) -> int:
    """``threads`` threads released together at wall time ``at`` hammer one key."""
    admitted = [0] * threads
    barrier = threading.Barrier(threads)

    def worker(index: int) -> None:
        barrier.wait()
        time.sleep(max(0.0, at - time.time()))
        admitted[index] = sum(1 for _ in range(attempts) if decide(key))

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sum(admitted)


def warm_worker() -> None:
    """Pool initializer: pay every library's import before the first timed race."""
    import django_ratelimit.core  # noqa: F401
    import limits.aio.strategies  # noqa: F401
    import pyrate_limiter  # noqa: F401
    import throttled  # noqa: F401

    import ratelimit_app.core  # noqa: F401


def exact_worker(
    name: str, backend: str, url: str, quota: Quota, key: str, threads: int, at: float
) -> int:
    """One process of the exactness race (runs in a spawned child)."""
    decide = build(name, backend, url, quota)
    decide(key + "-warm")
    return admit_in_threads(decide, key, threads, attempts=10, at=at)


def allowed_path(tag: str) -> list[str]:
    """50 fresh keys, each decided 4 times round robin: first hits and repeat hits."""
    return [f"{tag}-cost-{i}" for _ in range(4) for i in range(50)]


def denied_path(decide: Decide, tag: str, capacity: int) -> list[str]:
    """One key drained first, then decided 200 times: a client being refused."""
    key = f"{tag}-drained"
    for _ in range(capacity + 20):
        decide(key)
    return [key] * 200


def bytes_per_bucket(decide: Decide, admin: redis.Redis, tag: str, hits: int, n: int) -> float:
    """MEMORY USAGE of the keys that ``n`` fresh buckets create after ``hits`` decisions."""
    before = set(admin.scan_iter(count=1000))
    for i in range(n):
        for _ in range(hits):
            decide(f"{tag}-mem{hits}-{i}")
    created = set(admin.scan_iter(count=1000)) - before
    used = sum(int(admin.memory_usage(key, samples=0) or 0) for key in created)
    return used / n
