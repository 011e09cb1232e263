"""The workloads: throughput, async throughput, exactness, Redis cost and memory.

Round trips are counted on the client: every peer talks to Redis through redis-py, and
redis-py writes each command, or each pipeline, with one ``send_packed_command`` call
followed by reading the replies; wrapping that method (sync and async) counts round
trips whatever the library does above it. Commands run inside Redis come from
``INFO commandstats`` deltas after ``CONFIG RESETSTAT`` (commands a Lua script calls
are counted there too).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from peer_adapters import Decide, Quota, build
from timing import round_trips

_ADMIN_COMMANDS = {"config", "info", "hello", "client", "ping", "scan", "memory", "select"}


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


def command_stats(client: redis.Redis) -> dict[str, int]:
    stats: dict[str, Any] = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in stats.items()
        if name.removeprefix("cmdstat_").split("|")[0] not in _ADMIN_COMMANDS
    }


def redis_cost(decide: Decide, admin: redis.Redis, keys: list[str]) -> tuple[float, float, str]:
    """(round trips, Redis commands, command mix) per decision over ``keys`` in order."""
    admin.config_resetstat()
    before = round_trips()
    for key in keys:
        decide(key)
    trips = round_trips() - before
    stats = command_stats(admin)
    total = len(keys)
    mix = ", ".join(f"{name} {calls / total:g}" for name, calls in sorted(stats.items()))
    return trips / total, sum(stats.values()) / total, mix


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


def repeat(measure: Callable[[], float], times: int) -> list[float]:
    return [measure() for _ in range(times)]
