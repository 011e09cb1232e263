"""Code that runs in worker processes for the cluster exactness test (spawn imports it)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from redis.cluster import ClusterNode, RedisCluster

from ratelimit_app.core import RateLimitConfig, RedisStore, TokenBucketRateLimiter

# Capacity 100 and a refill so slow that the whole test cannot earn a token back.
EXACT = RateLimitConfig(capacity=100, refill_rate=1e-6)


def hammer(
    ports: list[int], prefix: str, identity: str, threads: int, attempts: int
) -> tuple[int, int]:
    """``threads`` threads share one cluster client, each asking ``attempts`` times.

    Returns (admitted, attempted). Threads start together behind a barrier so they race.
    """
    client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", port) for port in ports])
    limiter = TokenBucketRateLimiter(
        EXACT, RedisStore(client), key_prefix=prefix, on_store_error="raise"
    )
    barrier = threading.Barrier(threads)

    def one_thread() -> int:
        barrier.wait(timeout=30)
        return sum(bool(limiter.allow_request(identity)) for _ in range(attempts))

    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            admitted = sum(pool.map(lambda _: one_thread(), range(threads)))
    finally:
        client.close()
    return admitted, threads * attempts


def process_main(
    ports: list[int],
    prefix: str,
    identity: str,
    threads: int,
    attempts: int,
    start: Any,
    results: Any,
) -> None:
    """Entry point of one worker process: wait for the others, hammer, report."""
    start.wait(timeout=60)
    results.put(hammer(ports, prefix, identity, threads, attempts))
