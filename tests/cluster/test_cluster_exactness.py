"""Exactness on the cluster: racing threads, processes and tasks admit exactly capacity.

Capacity 100 with a refill of one token per million seconds: however the requests
interleave, exactly 100 may pass. Any lost update (read-modify-write outside the script)
or double-routing would show up as more than 100.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import threading

import pytest

from ratelimit_app.core import AsyncRedisStore, AsyncTokenBucketRateLimiter
from ratelimit_app.core.keys import build_key
from tests.cluster.workers import EXACT, hammer, process_main
from tests.cluster_server import RedisClusterServer

pytestmark = pytest.mark.slow


def test_32_threads_on_one_key_admit_exactly_100(
    redis_cluster: RedisClusterServer, key_prefix: str
) -> None:
    admitted, attempted = hammer(redis_cluster.ports, key_prefix, "hot", threads=32, attempts=8)
    assert attempted == 256
    assert admitted == 100


def test_4_processes_of_16_threads_admit_exactly_100(
    redis_cluster: RedisClusterServer, key_prefix: str
) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(4)
    results = ctx.Queue()
    args = (redis_cluster.ports, key_prefix, "hot", 16, 4, start, results)
    workers = [ctx.Process(target=process_main, args=args) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        outcomes = [results.get(timeout=60) for _ in workers]
    except queue.Empty:  # pragma: no cover - a worker died; its exit code says why
        pytest.fail(f"worker exit codes: {[w.exitcode for w in workers]}")
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():  # pragma: no cover - never leave a process behind
                worker.kill()
    assert sum(attempted for _, attempted in outcomes) == 256
    assert sum(admitted for admitted, _ in outcomes) == 100
    assert all(worker.exitcode == 0 for worker in workers)


async def test_200_tasks_on_the_async_cluster_client_admit_exactly_100(
    redis_cluster: RedisClusterServer, key_prefix: str
) -> None:
    # redis-py's async cluster client opens at most 100 connections per node by default
    # and fails (MaxConnectionsError) beyond that instead of waiting: size it for the load.
    client = redis_cluster.async_client(max_connections=256)
    try:
        limiter = AsyncTokenBucketRateLimiter(
            EXACT, AsyncRedisStore(client), key_prefix=key_prefix, on_store_error="raise"
        )
        gate = asyncio.Event()

        async def one() -> bool:
            await gate.wait()
            return bool(await limiter.allow_request("hot"))

        tasks = [asyncio.create_task(one()) for _ in range(200)]
        await asyncio.sleep(0)
        gate.set()
        assert sum(await asyncio.gather(*tasks)) == 100
    finally:
        await client.aclose()


def test_threads_on_many_keys_each_admit_exactly_capacity(
    redis_cluster: RedisClusterServer, key_prefix: str
) -> None:
    """Eight hot keys on all three masters, raced at once: each admits exactly 100."""
    identities = [f"hot{n}" for n in range(8)]
    totals: dict[str, int] = {}
    lock = threading.Lock()

    def run(identity: str) -> None:
        admitted, _ = hammer(redis_cluster.ports, key_prefix, identity, threads=4, attempts=30)
        with lock:
            totals[identity] = admitted

    threads = [threading.Thread(target=run, args=(who,)) for who in identities]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    owners = {
        redis_cluster.master_for(build_key(key_prefix, "default", who)) for who in identities
    }
    assert owners == {0, 1, 2}
    assert totals == dict.fromkeys(identities, 100)
