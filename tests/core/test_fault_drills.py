"""Fault drills on a single Redis: killed and restarted mid-load, and stalled past the timeout.

Each drill runs for every failure policy on a private ``RedisServer`` (the shared one is
never touched) with threads (or tasks) deciding all along, and checks that the policy
holds, that nothing but ``StoreError`` escapes (and that only under ``raise``), that no
call outlives the liveness bound, that Redis admits exactly what the arithmetic allows in
each life, and that decisions return to Redis by themselves.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
import redis.asyncio as aredis

from ratelimit_app.core import (
    AsyncRedisStore,
    AsyncTokenBucketRateLimiter,
    RateLimitConfig,
    RedisStore,
    StoreFailureHandler,
    TokenBucketRateLimiter,
)
from ratelimit_app.testing import RedisServer
from tests.fault_drill import (
    CALL_BOUND,
    DRILL,
    MODES,
    RETRIES,
    AsyncCountingStore,
    CountingStore,
    Load,
    Recorder,
    await_until,
    client_options,
    deciding,
    timed_call,
    wait_until,
)

pytestmark = pytest.mark.slow

C = int(DRILL.capacity)
RETRY_INTERVAL = 0.1
# Denial shedding off: with it, a key Redis denied stays denied locally until the
# retry_after Redis gave (days here), so a drained key would never ask Redis again.
DRILL_OPTIONS = {"key_prefix": "drill", "shed_denials": False}
OUTAGE = 0.6  # seconds the server stays dead, long enough for several back-off windows
PHASES = ("before", "outage", "recovery")


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with RedisServer() as private:
        yield private


def check_policy(recorder: Recorder, mode: str, phases: tuple[str, ...]) -> None:
    """What the failure policy answered, across the drill, is what the mode promises."""
    by_policy = recorder.by_policy(*phases)
    admitted = sum(bool(c.allowed) for c in by_policy)
    errors = recorder.errors(*phases)
    assert set(errors) <= {"StoreError"}
    if mode == "raise":
        assert not by_policy and errors["StoreError"] > 0
        return
    assert not errors and by_policy
    if mode == "fallback":
        assert admitted == C  # the memory bucket, full at the first failure, then drained
    elif mode == "allow":
        assert admitted == len(by_policy)
    else:
        assert admitted == 0


def check_killed_drill(recorder: Recorder, mode: str, state_tokens: float) -> None:
    print(f"\n[{mode}] killed and restarted:\n{recorder.summary(PHASES)}")
    assert recorder.store_admits["before"] == C  # first life: drained exactly
    assert recorder.store_failures["outage"] > 0  # the outage was felt, not backed off whole
    # Second life: a full bucket, drained exactly once. (A call started late in the
    # outage may land on the restarted server, so count the two phases together.)
    assert recorder.store_admits["outage"] + recorder.store_admits["recovery"] == C
    assert state_tokens < 1.0  # the key is back in Redis, drained (plus a negligible refill)
    check_policy(recorder, mode, PHASES)
    policy_admitted = sum(bool(c.allowed) for c in recorder.by_policy(*PHASES))
    assert recorder.admitted(*PHASES) == 2 * C + policy_admitted
    assert recorder.slowest(*PHASES) < CALL_BOUND


@pytest.mark.parametrize("mode", MODES)
def test_redis_killed_and_restarted_mid_load(server: RedisServer, mode: str) -> None:
    recorder = Recorder()
    client = server.client(**client_options())
    store = RedisStore(client)
    handler = StoreFailureHandler(mode, retry_interval=RETRY_INTERVAL)
    limiter = TokenBucketRateLimiter(
        DRILL, CountingStore(store, recorder), **DRILL_OPTIONS, on_store_error=handler
    )
    with Load(lambda _: timed_call(recorder, lambda: limiter.allow_request("victim"))) as load:
        wait_until(lambda: recorder.store_answers["before"] > C, 10, "bucket drained on Redis")
        server.stop()
        recorder.phase = "outage"
        outage_started = time.monotonic()
        wait_until(
            lambda: (
                len(recorder.in_phase("outage")) > C + 10
                and recorder.store_failures["outage"] > 0  # a call in this phase asked Redis
                and time.monotonic() - outage_started > OUTAGE
            ),
            10,
            "load during the outage",
        )
        recorder.phase = "recovery"
        server.start()
        back = wait_until(lambda: recorder.store_answers["recovery"] > 0, 10, "Redis answering")
        wait_until(lambda: recorder.store_answers["recovery"] > C, 10, "bucket drained again")
    print(f"back on Redis {back:.3f}s after the restart")
    assert not load.failures, load.failures
    state = store.get_state(limiter.key_for("victim"))
    client.close()
    assert state is not None
    check_killed_drill(recorder, mode, state.tokens)


@pytest.mark.parametrize("mode", MODES)
async def test_async_redis_killed_and_restarted_mid_load(server: RedisServer, mode: str) -> None:
    recorder = Recorder()
    client = aredis.Redis(host="127.0.0.1", port=server.port, **client_options(asyncio=True))
    store = AsyncRedisStore(client)
    handler = StoreFailureHandler(mode, retry_interval=RETRY_INTERVAL)
    limiter = AsyncTokenBucketRateLimiter(
        DRILL, AsyncCountingStore(store, recorder), **DRILL_OPTIONS, on_store_error=handler
    )
    # the load re-raises, when the block ends, anything but StoreError
    async with deciding(recorder, lambda: limiter.allow_request("victim")):
        await await_until(lambda: recorder.store_answers["before"] > C, 10, "drained on Redis")
        await asyncio.to_thread(server.stop)
        recorder.phase = "outage"
        await asyncio.sleep(OUTAGE)
        await await_until(
            lambda: (
                len(recorder.in_phase("outage")) > C + 10
                and recorder.store_failures["outage"] > 0  # a call in this phase asked Redis
            ),
            10,
            "outage load",
        )
        recorder.phase = "recovery"
        await asyncio.to_thread(server.start)
        back = await await_until(lambda: recorder.store_answers["recovery"] > 0, 10, "Redis")
        await await_until(lambda: recorder.store_answers["recovery"] > C, 10, "drained again")
    print(f"back on Redis {back:.3f}s after the restart")
    state = await store.get_state(limiter.key_for("victim"))
    await client.aclose()
    assert state is not None
    check_killed_drill(recorder, mode, state.tokens)


STALL = 1.2  # seconds DEBUG SLEEP freezes the server: six socket timeouts
BIG = RateLimitConfig(capacity=1000, refill_rate=1e-6)  # never drains during this drill


@pytest.mark.parametrize("mode", MODES)
def test_redis_slower_than_the_socket_timeout(server: RedisServer, mode: str) -> None:
    recorder = Recorder()
    client = server.client(**client_options())
    store = RedisStore(client)
    handler = StoreFailureHandler(mode, retry_interval=RETRY_INTERVAL)
    limiter = TokenBucketRateLimiter(
        BIG, CountingStore(store, recorder), **DRILL_OPTIONS, on_store_error=handler
    )
    admin = server.client()
    stall = threading.Thread(target=admin.execute_command, args=("DEBUG", "SLEEP", STALL))
    with Load(lambda _: timed_call(recorder, lambda: limiter.allow_request("victim"))) as load:
        wait_until(lambda: recorder.store_answers["before"] >= 20, 10, "decisions on Redis")
        recorder.phase = "stalled"
        stall.start()
        stall.join(timeout=STALL + 10)
        recorder.phase = "after"
        back = wait_until(lambda: recorder.store_answers["after"] > 0, 10, "Redis answering")
        wait_until(lambda: recorder.store_answers["after"] >= 20, 10, "decisions on Redis")
    print(f"\n[{mode}] stalled {STALL}s:\n{recorder.summary(('before', 'stalled', 'after'))}")
    assert not load.failures, load.failures
    state = store.get_state(limiter.key_for("victim"))
    admin.close()
    client.close()
    assert state is not None
    check_stall_drill(recorder, mode, BIG.capacity - state.tokens, back)


def check_stall_drill(recorder: Recorder, mode: str, consumed: float, back: float) -> None:
    phases = ("before", "stalled", "after")
    failed = sum(recorder.store_failures.values())
    assert failed > 0  # the stall was felt: calls timed out instead of waiting it out
    check_stall_policy(recorder, mode, phases)
    # A timed-out command may still run when the server wakes: it consumes a token that
    # admitted nobody (at most once per attempt), never one that admits twice.
    redis_admitted = sum(recorder.store_admits.values())
    ghosts = consumed - redis_admitted
    print(f"back on Redis {back:.3f}s after the stall; tokens taken by timed-out calls: {ghosts}")
    assert 0 <= ghosts <= failed * (1 + RETRIES)
    assert recorder.slowest(*phases) < CALL_BOUND


def check_stall_policy(recorder: Recorder, mode: str, phases: tuple[str, ...]) -> None:
    by_policy = recorder.by_policy(*phases)
    errors = recorder.errors(*phases)
    assert set(errors) <= {"StoreError"}
    if mode == "raise":
        assert not by_policy and errors["StoreError"] > 0
        return
    assert not errors and by_policy
    admitted = sum(bool(c.allowed) for c in by_policy)
    assert admitted == (0 if mode == "deny" else len(by_policy))
