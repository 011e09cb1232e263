"""Fault drills on a real Redis Cluster: a master killed mid-load, then restarted.

The drill runs on its own three-master cluster (the shared one is never disturbed).
Two limiters share one store and one failure handler, as ``make_limiters`` builds them:
"hit" decides a key owned by the master that dies, "spared" a key owned by a master that
lives. Keys on the dead master follow the failure policy, backing off that master for
``RETRY_INTERVAL``; keys on live masters keep deciding on Redis throughout (the back-off
is per node, not per store) (the cluster runs with ``cluster-require-full-coverage no``),
even once the other masters have marked the dead one as failed, and even after their
script cache is flushed mid-outage; the restarted master rejoins and serves again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from ratelimit_app.core import (
    RedisStore,
    StoreError,
    StoreFailureHandler,
    TokenBucketRateLimiter,
)
from ratelimit_app.core.keys import build_key
from tests.cluster_server import RedisClusterServer
from tests.fault_drill import (
    CALL_BOUND,
    DRILL,
    MODES,
    CountingStore,
    Load,
    Recorder,
    timed_call,
    wait_until,
)

pytestmark = pytest.mark.slow

C = int(DRILL.capacity)
RETRY_INTERVAL = 0.5
DEAD = 1  # index of the master the drill kills
PHASES = ("before", "outage", "restart", "recovery")
# redis-py's cluster client retries a failed command ten times by default, re-reading the
# slot map each time and sleeping 0.25 s on each CLUSTERDOWN: a restarted master answers
# CLUSTERDOWN for about two seconds while it rejoins, so calls would block that long.
# One retry keeps every call within the liveness bound.
CLUSTER_OPTIONS = {
    "socket_timeout": 0.2,
    "socket_connect_timeout": 0.2,
    "retry": Retry(NoBackoff(), 1),
}


@pytest.fixture(scope="module")
def drill_cluster() -> Iterator[RedisClusterServer]:
    with RedisClusterServer(masters=3, node_timeout_ms=500) as cluster:
        yield cluster


def identity_on(cluster: RedisClusterServer, policy: str, master: int, prefix: str) -> str:
    """An identity whose bucket key lives on ``master``."""
    for n in range(1000):
        if cluster.master_for(build_key(prefix, policy, f"id{n}")) == master:
            return f"id{n}"
    raise AssertionError(f"no identity found for master {master}")  # pragma: no cover


def marked_failed(cluster: RedisClusterServer, dead: int, by: int) -> bool:
    """Whether master ``by`` has flagged master ``dead`` as failed (not just suspected)."""
    conn = cluster.node_client(by)
    try:
        nodes = conn.execute_command("CLUSTER", "NODES")
    finally:
        conn.close()
    text = nodes.decode() if isinstance(nodes, bytes) else str(nodes)
    port = f":{cluster.ports[dead]}@"
    return any(port in line and ",fail" in line.split()[2] for line in text.splitlines())


def flush_scripts(cluster: RedisClusterServer, master: int) -> None:
    conn = cluster.node_client(master)
    try:
        conn.script_flush()
    finally:
        conn.close()


def make_pair(
    client: RedisCluster, mode: str, hit: Recorder, spared: Recorder, prefix: str
) -> tuple[TokenBucketRateLimiter, TokenBucketRateLimiter]:
    # The handler is shared, but its back-off is per master: the dead one is left alone
    # for RETRY_INTERVAL while the spared key's master is asked on every call.
    handler = StoreFailureHandler(mode, retry_interval=RETRY_INTERVAL)
    store = RedisStore(client)
    # Denial shedding off, or a drained key would be denied locally and never ask Redis.
    options = {"key_prefix": prefix, "on_store_error": handler, "shed_denials": False}
    return (
        TokenBucketRateLimiter(DRILL, CountingStore(store, hit), name="hit", **options),
        TokenBucketRateLimiter(DRILL, CountingStore(store, spared), name="spared", **options),
    )


@pytest.mark.parametrize("mode", MODES)
def test_cluster_master_killed_and_restarted_mid_load(
    drill_cluster: RedisClusterServer, mode: str, key_prefix: str
) -> None:
    hit, spared = Recorder(), Recorder()
    client = drill_cluster.client(**CLUSTER_OPTIONS)
    hit_limiter, spared_limiter = make_pair(client, mode, hit, spared, key_prefix)
    hit_id = identity_on(drill_cluster, "hit", DEAD, key_prefix)
    spared_id = identity_on(drill_cluster, "spared", 0, key_prefix)

    def step(n: int) -> None:
        if n % 2:
            timed_call(hit, lambda: hit_limiter.allow_request(hit_id))
        else:
            timed_call(spared, lambda: spared_limiter.allow_request(spared_id))

    try:
        with Load(step, threads=4) as load:
            run_outage(drill_cluster, hit, spared)
    finally:
        if drill_cluster.nodes[DEAD].process is None:  # the drill failed mid-outage
            drill_cluster.restart_master(DEAD)
    print(f"\n[{mode}] master killed, key on it:\n{hit.summary(PHASES)}")
    print(f"[{mode}] key on a live master:\n{spared.summary(PHASES)}")
    assert not load.failures, load.failures
    check_cluster_drill(mode, hit, spared)
    client.close()


def run_outage(cluster: RedisClusterServer, hit: Recorder, spared: Recorder) -> None:
    def phase(name: str) -> None:
        hit.phase = spared.phase = name

    wait_until(lambda: hit.store_answers["before"] > C, 10, "hit bucket drained on Redis")
    wait_until(lambda: spared.store_answers["before"] > C, 10, "spared bucket drained")
    cluster.kill_master(DEAD)
    phase("outage")
    killed = time.monotonic()
    failed_after = wait_until(lambda: marked_failed(cluster, DEAD, by=0), 10, "master failed")
    flush_scripts(cluster, 0)  # the spared key's master forgets the script mid-outage
    answered = spared.store_answers["outage"]
    wait_until(lambda: spared.store_answers["outage"] > answered + 10, 10, "spared decisions")
    wait_until(lambda: len(hit.in_phase("outage")) > C + 10, 10, "load on the dead master")
    phase("restart")
    outage = time.monotonic() - killed
    cluster.restart_master(DEAD)  # returns once every master reports cluster_state:ok
    rejoined = time.monotonic() - killed - outage
    phase("recovery")
    # Until both are seen, however long it takes within the bound: the hit key drained on
    # its restarted master (calls still in flight from "restart" may already have done
    # it), and at least one call started in this phase decided on Redis for the spared key.
    back = wait_until(lambda: after_restart(hit, "store_answers") > C, 30, "dead master serving")
    wait_until(lambda: spared.store_answers["recovery"] > 0, 30, "spared key after the restart")
    print(f"\noutage {outage:.2f}s (marked failed after {failed_after:.2f}s); rejoined in"
          f" {rejoined:.2f}s; hit key drained on Redis {back:.3f}s after that")  # fmt: skip


def after_restart(recorder: Recorder, counter: str) -> int:
    tally = getattr(recorder, counter)
    return int(tally["restart"] + tally["recovery"])


def check_cluster_drill(mode: str, hit: Recorder, spared: Recorder) -> None:
    # The spared key never left Redis while its master lived beside a dead one (nor when
    # that master lost its script cache mid-outage): no policy answer, no error, and over
    # the whole drill it was drained exactly once.
    assert not spared.by_policy(*PHASES) and not spared.errors(*PHASES)
    assert spared.store_answers["outage"] > 0 and spared.store_answers["recovery"] > 0
    assert sum(spared.store_admits.values()) == C
    # The hit key: drained in its first life, unreachable during the outage, full again
    # (a fresh master with no persistence) and drained exactly once after the restart
    # (a call started late in the outage may land on the restarted master).
    assert hit.store_admits["before"] == C
    tried, calls = hit.store_failures["outage"], len(hit.in_phase("outage"))
    if mode == "raise":  # no back-off: every call asks the dead master
        assert tried > C
    else:  # the dead master is asked about once per RETRY_INTERVAL, not once per call
        assert 1 <= tried < calls / 4, (tried, calls)
    assert hit.store_admits["outage"] + after_restart(hit, "store_admits") == C
    by_policy = hit.by_policy(*PHASES)
    admitted = sum(bool(c.allowed) for c in by_policy)
    errors = hit.errors(*PHASES)
    if mode == "raise":
        assert not by_policy and set(errors) == {"StoreError"}
    else:
        assert not errors and by_policy
        expected = {"fallback": C, "allow": len(by_policy), "deny": 0}[mode]
        assert admitted == expected
    assert max(hit.slowest(*PHASES), spared.slowest(*PHASES)) < CALL_BOUND


@pytest.mark.parametrize("mode", MODES)
def test_whole_cluster_down_follows_the_policy(
    drill_cluster: RedisClusterServer, mode: str, key_prefix: str
) -> None:
    """With every master gone the client cannot even learn the slot map: still a StoreError."""
    client = drill_cluster.client(**CLUSTER_OPTIONS)
    limiter = TokenBucketRateLimiter(
        DRILL, RedisStore(client), key_prefix=key_prefix, on_store_error=mode
    )
    assert limiter.allow_request("anyone")
    try:
        for i in range(len(drill_cluster.nodes)):
            drill_cluster.kill_master(i)
        started = time.monotonic()
        if mode == "raise":
            with pytest.raises(StoreError):
                limiter.allow_request("anyone")
        else:
            decision = limiter.allow_request("anyone")
            assert decision.allowed == (mode != "deny")
        assert time.monotonic() - started < CALL_BOUND
    finally:
        client.close()
        for node in drill_cluster.nodes:
            node.start()
        drill_cluster.wait_ok()
