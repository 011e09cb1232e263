"""Decisions per second of the core limiter beside the floor a Redis decision cannot beat.

    python3 -m bench.core [--seconds 1.0] [--repeat 3] [--redis-url URL]

Memory and Redis, sync and async (1 and 50 concurrent tasks), one hot key and 10,000
keys; the floor is a bare ``EVALSHA`` of a minimal token-bucket script (``MINIMAL``: the
least any Redis token bucket must do) and ``PING``, on the same client, and for memory
a ten-line dict bucket (``DictBucket``: what plain Python does, unbounded and unlocked).
Then what one decision costs Redis: round trips sent by the client and commands run
inside Redis (``INFO commandstats``), and the same for a flood of denials from one key
with and without denial shedding. Then the event hook: one memory decision with no
listener (the hot path as it always was: one attribute check), one no-op listener, and
the Prometheus listener, with the bytes a decision allocates on the way (tracemalloc's
peak above the baseline: 0 extra without a listener). Last, what a policy's own key and
tiers add to a memory decision (``core.request_limits.check``, as every integration
calls it): today's default policy (``user_or_ip`` of an anonymous client), a policy
keyed by ``header:X-Api-Key`` with tiers picked by a resolver, and the bare
``allow_request`` beside them. Uses ``--redis-url`` or ``REDIS_URL`` if set, else
starts a private server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import redis
import redis.asyncio as aredis

from ratelimit_app.core import (
    AsyncMemoryStore,
    AsyncRedisStore,
    AsyncTokenBucketRateLimiter,
    MemoryStore,
    RateLimitConfig,
    RedisStore,
    TokenBucketRateLimiter,
)
from ratelimit_app.core.events import Event, Listener, hub
from ratelimit_app.testing import redis_url_or_private

from . import cli
from .costs import install_round_trip_counter, redis_cost
from .tables import markdown_table
from .timing import athroughput, hot_key, interleaved, many_keys, spread, throughput

# Effectively unlimited, so throughput rows measure admissions, not denials.
OPEN = RateLimitConfig(capacity=1e12, refill_rate=1e12)
# The least a Redis token bucket must do in one call: read, refill, take, write, expire.
MINIMAL = """
local c, r, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = t[1] + t[2] / 1000000
local v = redis.call('HMGET', KEYS[1], 't', 'u')
local tokens = math.min(c, (tonumber(v[1]) or c) + (now - (tonumber(v[2]) or now)) * r)
local ok = tokens >= cost
if ok then tokens = tokens - cost end
redis.call('HSET', KEYS[1], 't', tokens, 'u', now)
redis.call('EXPIRE', KEYS[1], math.ceil(c / r))
return ok and 1 or 0
"""
MINIMAL_ARGS = ("1e12", "1e12", "1")
Row = tuple[str, str, tuple[float, float, float], float]  # label, keys, rate, CPU us


class DictBucket:
    """What plain Python does with a dict: the floor for a memory store (no lock, no
    bound, no validation, no decision object)."""

    def __init__(self, capacity: float = 1e12, rate: float = 1e12) -> None:
        self.capacity, self.rate, self.buckets = capacity, rate, {}  # type: ignore[var-annotated]

    def allow(self, key: str, cost: float = 1.0) -> bool:
        now = time.monotonic()
        tokens, last = self.buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        allowed = tokens >= cost
        self.buckets[key] = (tokens - cost if allowed else tokens, now)
        return allowed


class Case(NamedTuple):
    label: str
    keys: str
    call: Callable[[str], Any]  # sync, or async returning an awaitable
    make: Callable[[], Iterator[str]]


def sync_rows(url: str, args: argparse.Namespace) -> list[Row]:
    client = redis.Redis.from_url(url)
    minimal = client.script_load(MINIMAL)
    memory = TokenBucketRateLimiter(OPEN, MemoryStore())
    remote = TokenBucketRateLimiter(OPEN, RedisStore(client))
    cases = [
        Case("memory, sync", "hot key", memory.allow_request, hot_key),
        Case("memory, sync", "10,000 keys", memory.allow_request, many_keys),
        Case("floor: ten-line dict bucket", "hot key", DictBucket().allow, hot_key),
        Case("floor: ten-line dict bucket", "10,000 keys", DictBucket().allow, many_keys),
        Case("redis, sync", "hot key", remote.allow_request, hot_key),
        Case("redis, sync", "10,000 keys", remote.allow_request, many_keys),
        Case(
            "floor: EVALSHA minimal bucket",
            "sync",
            lambda k: client.evalsha(minimal, 1, k, *MINIMAL_ARGS),
            hot_key,
        ),
        Case("floor: PING", "sync", lambda _k: client.ping(), hot_key),
    ]
    samples: list[list[tuple[float, float]]] = [[] for _ in cases]
    for index, case in interleaved(cases, args.repeat):
        samples[index].append(throughput(case.call, case.make(), args.seconds))
    client.close()
    rows = []
    for case, taken in zip(cases, samples, strict=True):
        cpu = spread(cpu for _rate, cpu in taken)[0]
        rows.append((case.label, case.keys, spread(rate for rate, _cpu in taken), cpu))
    return rows


async def async_rows(url: str, args: argparse.Namespace) -> list[Row]:
    pool = aredis.BlockingConnectionPool.from_url(url, max_connections=50, timeout=10)
    client = aredis.Redis(connection_pool=pool)
    minimal = await client.script_load(MINIMAL)
    memory = AsyncTokenBucketRateLimiter(OPEN, AsyncMemoryStore())
    remote = AsyncTokenBucketRateLimiter(OPEN, AsyncRedisStore(client))

    async def evalsha(key: str) -> object:
        return await client.evalsha(minimal, 1, key, *MINIMAL_ARGS)  # type: ignore[misc]

    async def ping(_key: str) -> object:
        return await client.ping()  # type: ignore[misc]

    cases = [
        Case("memory, async", "hot key", memory.allow_request, hot_key),
        Case("redis, async", "hot key", remote.allow_request, hot_key),
        Case("redis, async", "10,000 keys", remote.allow_request, many_keys),
        Case("floor: EVALSHA minimal bucket", "async", evalsha, hot_key),
        Case("floor: PING", "async", ping, hot_key),
    ]
    rows: list[Row] = []
    for tasks in (1, 50):
        rates: list[list[float]] = [[] for _ in cases]
        for index, case in interleaved(cases, args.repeat):
            rate, _cpu = await athroughput(case.call, case.make(), args.seconds, tasks)
            rates[index].append(rate)
        for case, values in zip(cases, rates, strict=True):
            name = f"{case.label}, {tasks} task{'s' if tasks > 1 else ''}"
            rows.append((name, case.keys, spread(values), float("nan")))
    await client.aclose()
    await pool.disconnect()
    return rows


def cost_rows(url: str) -> list[tuple[str, float, float]]:
    install_round_trip_counter()
    admin = redis.Redis.from_url(url)
    client = redis.Redis.from_url(url)
    client.ping()  # connect before counting
    n = 1000
    allowing = TokenBucketRateLimiter(OPEN, RedisStore(client), key_prefix="cost")
    allowing.allow_request("warm")  # loads the script (NOSCRIPT once) before counting
    trips, commands, _mix = redis_cost(allowing.allow_request, admin, [f"k{i}" for i in range(n)])
    rows = [("one decision (allowed)", trips, commands)]
    for shed in (False, True):
        flood = TokenBucketRateLimiter(
            RateLimitConfig(5, 1e-6), RedisStore(client), key_prefix=f"flood{shed:d}",
            shed_denials=shed,
        )  # fmt: skip
        flood.allow_request("one", 5)
        trips, commands, _mix = redis_cost(flood.allow_request, admin, ["one"] * n)
        rows.append(
            (f"denied, one-key flood, shedding {'on' if shed else 'off'}", trips, commands)
        )
    admin.close()
    client.close()
    return rows


def _no_op(event: Event) -> None:
    pass


def _prometheus() -> Listener:
    from prometheus_client import CollectorRegistry

    from ratelimit_app.core.metrics import PrometheusMetrics

    return PrometheusMetrics(CollectorRegistry())  # a private registry: nothing global


def transient_bytes(call: Callable[[str], Any], samples: int = 300) -> float:
    """Median bytes allocated while one decision runs, freed or not (tracemalloc peak)."""
    call("hot")
    tracemalloc.start()
    taken = []
    for _ in range(samples):
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        call("hot")
        taken.append(tracemalloc.get_traced_memory()[1] - base)
    tracemalloc.stop()
    return statistics.median(taken)


def event_rows(args: argparse.Namespace) -> list[tuple[str, tuple[float, float, float], float]]:
    """Memory decisions per second and bytes per decision, by listeners registered."""
    limiter = TokenBucketRateLimiter(OPEN, MemoryStore())
    variants: list[tuple[str, Listener | None]] = [
        ("no listener", None), ("one no-op listener", _no_op), ("Prometheus", _prometheus()),
    ]  # fmt: skip
    rates: list[list[float]] = [[] for _ in variants]
    allocated = []
    for index, (_label, listener) in interleaved(variants, args.repeat):
        if listener is not None:
            hub.subscribe(listener)
        rates[index].append(throughput(limiter.allow_request, hot_key(), args.seconds)[0])
        if len(allocated) <= index:
            allocated.append(transient_bytes(limiter.allow_request))
        if listener is not None:
            hub.unsubscribe(listener)
    return [
        (label, spread(values), allocated[i])
        for i, ((label, _), values) in enumerate(zip(variants, rates, strict=True))
    ]


class BenchFacts(NamedTuple):
    """A request as the core reads it (``RequestFacts``), built before timing starts."""

    address: str
    headers: dict[str, str]

    def ip(self) -> str:
        return self.address

    def user(self) -> Any:
        return None  # anonymous: user_or_ip falls back to the address

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def query(self, name: str) -> str | None:
        return None

    def call(self, func: Callable[..., Any]) -> Any:
        return func(self)


def plan(facts: BenchFacts) -> str | None:
    """The tier resolver a real app would write (here: a header; usually the user's plan)."""
    return facts.headers.get("X-Plan")


POLICY_SETTINGS = {
    "POLICIES": {
        "default": {"capacity": 1e12, "refill_rate": 1e12},
        "api": {
            "key": "header:X-Api-Key",
            "tiers": {"free": {"capacity": 1e12, "refill_rate": 1e12},
                      "pro": {"capacity": 1e13, "refill_rate": 1e13}},
            "tier": plan,
        },
    }
}  # fmt: skip


PolicyRow = tuple[str, str, tuple[float, float, float], float, float | None]
CLIENTS = 5_000  # x 3 variants: every key stays in the 16,384-entry key cache


def policy_rows(args: argparse.Namespace) -> list[PolicyRow]:
    """Sync memory decisions through ``check``: the bare limiter, the default policy and
    a keyed and tiered one, on a hot key and 5,000 clients: rate, CPU us per decision,
    and the keyed one's added CPU as the median of each round's paired difference (a
    shared machine's drift falls on both halves of a pair alike)."""
    from ratelimit_app.core.limits import sync_limits
    from ratelimit_app.core.policies import parse_settings
    from ratelimit_app.core.request_limits import Limit, bind, check

    limits = sync_limits(parse_settings(POLICY_SETTINGS), MemoryStore())
    default, api = bind(limits, Limit("default")), bind(limits, Limit("api"))
    facts = {
        key: BenchFacts(f"10.0.{i // 256}.{i % 256}",
                        {"X-Api-Key": f"key-{i}", "X-Plan": "pro" if i % 2 else "free"})
        for i, key in enumerate(["hot", *(f"client-{i}" for i in range(CLIENTS))])
    }  # fmt: skip
    bare = limits.limiters["default"]
    variants: list[tuple[str, Callable[[str], Any]]] = [
        ("bare allow_request(identity)", lambda key: bare.allow_request(key)),
        ("default policy (user_or_ip)", lambda key: check(default, facts[key])),
        ("keyed + tiered policy", lambda key: check(api, facts[key])),
    ]
    workloads = {"hot key": hot_key, f"{CLIENTS:,} keys": lambda: many_keys(CLIENTS)}
    found: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for _ in range(args.repeat):
        for keys, source in workloads.items():
            for index, (_label, call) in enumerate(variants):
                found.setdefault((index, keys), []).append(
                    throughput(call, source(), args.seconds)
                )
    rows: list[PolicyRow] = []
    for i, (label, _) in enumerate(variants):
        for keys in workloads:
            runs = found[i, keys]
            added = None
            if i == 2:
                pairs = zip(runs, found[1, keys], strict=True)
                added = statistics.median(mine[1] - base[1] for mine, base in pairs)
            cpu = statistics.median(c for _, c in runs)
            rows.append((label, keys, spread(r for r, _ in runs), cpu, added))
    return rows


def floor_for(label: str, keys: str, rows: list[Row]) -> float | None:
    """The floor's rate measured in the same style: the dict bucket on the same keys for
    memory, else the bare EVALSHA (sync, or async with as many tasks)."""
    if label.startswith("memory"):
        return next((r[2][0] for r in rows if "dict" in r[0] and r[1] == keys), None)
    style = "async" if "async" in label else "sync"
    tasks = label.rsplit(", ", 1)[-1] if style == "async" else ""
    for other, keys, (median, _, _), _cpu in rows:
        if "EVALSHA" in other and keys == style and other.endswith(tasks):
            return median
    return None


def throughput_cells(rows: list[Row]) -> list[list[str]]:
    cells = []
    for label, keys, (median, low, high), cpu in rows:
        floor = floor_for(label, keys, rows) if label.startswith(("redis", "memory")) else None
        ratio = f"{median / floor:.2f}x" if floor else ""
        cpu_text = "" if cpu != cpu else f"{cpu:.1f}"  # NaN: not measured (async)
        rate = f"{median:,.0f} [{low:,.0f}-{high:,.0f}]"
        cells.append([label, keys, rate, f"{1e6 / median:.1f}", cpu_text, ratio])
    return cells


def print_tables(
    rows: list[Row],
    costs: list[tuple[str, float, float]],
    events: list[tuple[str, tuple[float, float, float], float]],
    args: argparse.Namespace,
) -> None:
    print(
        f"# bench/core.py ({platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} cpus; {args.repeat} runs of {args.seconds}s: median [min-max])\n"
    )
    header = ["workload", "keys", "decisions/s", "us/decision", "client CPU us"]
    print(markdown_table([*header, "vs floor"], throughput_cells(rows), labels=2))
    print()
    header = ["Redis cost per request", "round trips (client)", "commands inside Redis"]
    print(
        markdown_table(
            header, ([label, f"{t:.3f}", f"{c:.3f}"] for label, t, c in costs), labels=1
        )
    )
    print()
    header = ["event hook (memory, sync, hot key)", "decisions/s", "us/decision", "bytes/decision"]
    cells = [
        [label, f"{m:,.0f} [{lo:,.0f}-{hi:,.0f}]", f"{1e6 / m:.2f}", f"{b:,.0f}"]
        for label, (m, lo, hi), b in events
    ]
    print(markdown_table(header, cells, labels=1))


def print_policy_table(rows: list[PolicyRow]) -> None:
    """The policy rows, with what the key and tiers add to today's default policy."""
    cells = [
        [label, keys, f"{m:,.0f} [{lo:,.0f}-{hi:,.0f}]", f"{1e6 / m:.2f}", f"{cpu:.2f}",
         "" if added is None else f"{added:+.2f}"]
        for label, keys, (m, lo, hi), cpu, added in rows
    ]  # fmt: skip
    header = ["policy (memory, sync, check)", "keys", "decisions/s", "us/decision",
              "client CPU us", "vs default, CPU us"]  # fmt: skip
    print()
    print(markdown_table(header, cells, labels=2))


def main() -> None:
    args = cli.parse_rounds(__doc__)
    with redis_url_or_private(args.redis_url) as url:
        rows = sync_rows(url, args) + asyncio.run(async_rows(url, args))
        costs = cost_rows(url)
    print_tables(rows, costs, event_rows(args), args)
    print_policy_table(policy_rows(args))


if __name__ == "__main__":
    main()
