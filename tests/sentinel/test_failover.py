"""Failover drills through Sentinel: the master killed mid-load, the replica promoted.

Each drill starts its own group (a master, a replica, three sentinels, all from the
server binary under test), reaches it by its ``redis+sentinel://`` URL alone, and kills
the master while threads (or tasks) decide. The failure policy must answer during the
failover, decisions must come back from Redis (the promoted replica) without restarting
anything, the bucket's state must survive (it was replicated), and nothing but the
policy's answers may reach the caller. The failover gap (kill -> first decision from
Redis again) is printed; run with ``-s`` to see it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from project.servers import running
from ratelimit_app.core import (
    AsyncTokenBucketRateLimiter,
    StoreFailureHandler,
    TokenBucketRateLimiter,
)
from ratelimit_app.core.stores.from_url import (
    StorageOptions,
    close_async_store,
    close_sync_store,
    make_async_store,
    make_sync_store,
)
from ratelimit_app.testing import SentinelGroup, free_port, server_version
from tests.fault_drill import (
    CALL_BOUND,
    DRILL,
    AsyncCountingStore,
    CountingStore,
    Load,
    Recorder,
    await_until,
    deciding,
    timed_call,
    wait_until,
)
from tests.project.test_store_urls import DEMOS, _command

pytestmark = pytest.mark.slow

C = int(DRILL.capacity)
PHASES = ("before", "failover", "after")
OPTIONS = {"key_prefix": "drill", "shed_denials": False}
FAILOVER_BOUND = 30.0  # seconds: down-after 1 s, then election and promotion


@pytest.fixture
def group() -> Iterator[SentinelGroup]:
    with SentinelGroup() as started:
        yield started


def storage(group: SentinelGroup) -> StorageOptions:
    return StorageOptions(url=group.url, socket_timeout=0.2, pool_timeout=5.0)


def replicated(group: SentinelGroup) -> None:
    """Until the replica has every write the master has (WAIT), so a drained bucket is
    drained on both before the kill."""
    client = group.master.client(socket_timeout=5.0)
    try:
        assert client.execute_command("WAIT", 1, 5000) == 1
    finally:
        client.close()


def check_failover(recorder: Recorder, mode: str, gap: float, group: SentinelGroup) -> None:
    print(f"\n[{mode}] {server_version()}: failover gap {gap:.2f}s\n{recorder.summary(PHASES)}")
    assert group.master_port() == group.replica.port  # promoted, found by the sentinels
    assert not recorder.errors(*PHASES)  # never raised: the policy answered instead
    assert recorder.store_admits["before"] == C
    assert recorder.store_failures["failover"] > 0
    assert len(recorder.by_policy("failover")) > C  # the policy held the whole gap
    # (a call started just before the kill may have failed, and been answered, too)
    admitted = sum(bool(c.allowed) for c in recorder.by_policy(*PHASES))
    assert admitted == (C if mode == "fallback" else 0)
    # The promoted replica had the drained bucket: it admits nothing more for it.
    assert recorder.store_answers["after"] > 0
    assert recorder.store_admits["failover"] + recorder.store_admits["after"] == 0
    assert recorder.slowest(*PHASES) < CALL_BOUND + 1.0


@pytest.mark.parametrize("mode", ["fallback", "deny"])
def test_master_killed_mid_load_fails_over_to_the_replica(group: SentinelGroup, mode: str) -> None:
    recorder = Recorder()
    store = make_sync_store(storage(group))
    handler = StoreFailureHandler(mode, retry_interval=0.1)
    limiter = TokenBucketRateLimiter(
        DRILL, CountingStore(store, recorder), on_store_error=handler, **OPTIONS
    )
    with Load(lambda _: timed_call(recorder, lambda: limiter.allow_request("victim"))) as load:
        wait_until(lambda: recorder.store_answers["before"] > C, 10, "drained on the master")
        replicated(group)
        group.kill_master()
        recorder.phase = "failover"
        killed = time.monotonic()
        wait_until(lambda: recorder.store_answers["failover"] > 0, FAILOVER_BOUND, "promotion")
        gap = time.monotonic() - killed
        recorder.phase = "after"
        wait_until(lambda: recorder.store_answers["after"] > 10, 10, "decisions on Redis")
    assert not load.failures, load.failures
    # Exact on the promoted replica: a fresh identity gets its capacity, no more.
    fresh = [limiter.allow_request("fresh").allowed for _ in range(C + 5)]
    close_sync_store(store)
    assert fresh == [True] * C + [False] * 5
    check_failover(recorder, mode, gap, group)


async def test_async_master_killed_mid_load_fails_over(group: SentinelGroup) -> None:
    recorder = Recorder()
    store = make_async_store(storage(group))
    handler = StoreFailureHandler("fallback", retry_interval=0.1)
    limiter = AsyncTokenBucketRateLimiter(
        DRILL, AsyncCountingStore(store, recorder), on_store_error=handler, **OPTIONS
    )
    async with deciding(recorder, lambda: limiter.allow_request("victim")):
        await await_until(lambda: recorder.store_answers["before"] > C, 10, "drained")
        await asyncio.to_thread(replicated, group)
        await asyncio.to_thread(group.kill_master)
        recorder.phase = "failover"
        killed = time.monotonic()
        await await_until(lambda: recorder.store_answers["failover"] > 0, FAILOVER_BOUND, "up")
        gap = time.monotonic() - killed
        recorder.phase = "after"
        await await_until(lambda: recorder.store_answers["after"] > 10, 10, "on Redis")
    fresh = [(await limiter.allow_request("fresh")).allowed for _ in range(C + 5)]
    await close_async_store(store)
    assert fresh == [True] * C + [False] * 5
    check_failover(recorder, "fallback", gap, group)


@pytest.mark.parametrize("name", sorted(DEMOS))
def test_demo_behind_sentinel_never_answers_500_during_a_failover(
    group: SentinelGroup, name: str, tmp_path: Path
) -> None:
    """The Flask and FastAPI demos with ``ON_STORE_ERROR=deny``: 200s, then 429s from the
    policy while no master answers, then 200s from the promoted replica; nothing else."""
    env = {
        "REDIS_URL": group.url,
        "RATELIMIT_CAPACITY": "100000",
        "RATELIMIT_REFILL_RATE": "1e-6",
        "RATELIMIT_ON_STORE_ERROR": "deny",
        "RATELIMIT_RETRY_INTERVAL": "0.1",
    }
    port = free_port()
    seen: list[tuple[float, int]] = []
    with (
        running(_command(name, port), env, port, tmp_path / "log"),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
    ):

        def ping() -> int:
            code = client.get("/api/ping").status_code
            seen.append((time.monotonic(), code))
            return code

        assert [ping() for _ in range(5)] == [200] * 5
        group.kill_master()
        killed = time.monotonic()
        deadline = killed + FAILOVER_BOUND
        # until every worker decides on the promoted replica: 20 answers from it in a row
        while not (any(c == 429 for _, c in seen) and [c for _, c in seen[-20:]] == [200] * 20):
            assert time.monotonic() < deadline, "no decisions from the promoted replica"
            ping()
            time.sleep(0.01)
    after_kill = [(t, c) for t, c in seen if t >= killed]
    denied = [t for t, c in after_kill if c == 429]
    back = next(t for t, c in after_kill if c == 200 and t > denied[0])
    print(f"\n[{name}] {server_version()}: {len(denied)} answered 429 by the policy; "
          f"first 200 from the promoted replica {back - killed:.2f}s after the kill")  # fmt: skip
    assert {c for _, c in seen} == {200, 429}  # never a 500
