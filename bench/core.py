"""Decisions per second of the core limiter beside the floor a Redis decision cannot beat.

    python bench/core.py [--seconds 1.0] [--repeat 3]

Memory and Redis, sync and async (1 and 50 concurrent tasks), one hot key and 10,000
keys; the floor is a bare ``EVALSHA`` of a minimal token-bucket script (``MINIMAL``: the
least any Redis token bucket must do) and ``PING``, on the same client.
Then what one decision costs Redis: round trips sent by the client and commands run
inside Redis (``INFO commandstats``), and the same for a flood of denials from one key
with and without denial shedding. Uses ``REDIS_URL`` if set, else starts a private server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import redis  # noqa: E402
import redis.asyncio as aredis  # noqa: E402
from timing import (  # noqa: E402
    athroughput,
    hot_key,
    install_round_trip_counter,
    many_keys,
    round_trips,
    throughput,
)

from ratelimit_app.core import (  # noqa: E402
    AsyncMemoryStore,
    AsyncRedisStore,
    AsyncTokenBucketRateLimiter,
    MemoryStore,
    RateLimitConfig,
    RedisStore,
    TokenBucketRateLimiter,
)

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


def sync_rows(url: str, args: argparse.Namespace) -> list[Row]:
    client = redis.Redis.from_url(url)
    minimal = client.script_load(MINIMAL)
    memory = TokenBucketRateLimiter(OPEN, MemoryStore())
    remote = TokenBucketRateLimiter(OPEN, RedisStore(client))
    cases: list[tuple[str, str, Callable[[str], object], Callable[[], Iterator[str]]]] = [
        ("memory, sync", "hot key", memory.allow_request, hot_key),
        ("memory, sync", "10,000 keys", memory.allow_request, many_keys),
        ("redis, sync", "hot key", remote.allow_request, hot_key),
        ("redis, sync", "10,000 keys", remote.allow_request, many_keys),
        (
            "floor: EVALSHA minimal bucket",
            "sync",
            lambda k: client.evalsha(minimal, 1, k, *MINIMAL_ARGS),
            hot_key,
        ),
        ("floor: PING", "sync", lambda _k: client.ping(), hot_key),
    ]
    # Round-robin: repetition i of every case runs before repetition i + 1 of any, so a
    # burst of load on the shared machine touches all rows alike.
    samples: list[list[tuple[float, float]]] = [[] for _ in cases]
    for _ in range(args.repeat):
        for index, (_label, _keys, call, make) in enumerate(cases):
            samples[index].append(throughput(call, make(), args.seconds))
    client.close()
    rows = []
    for (label, keys, _call, _make), taken in zip(cases, samples, strict=True):
        cpu = sorted(cpu for _rate, cpu in taken)[len(taken) // 2]
        rows.append((label, keys, spread([rate for rate, _cpu in taken]), cpu))
    return rows


def spread(values: list[float]) -> tuple[float, float, float]:
    """(median, min, max)."""
    ordered = sorted(values)
    return ordered[len(ordered) // 2], ordered[0], ordered[-1]


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

    rows: list[Row] = []
    for tasks in (1, 50):
        cases = [
            ("memory, async", "hot key", memory.allow_request, hot_key),
            ("redis, async", "hot key", remote.allow_request, hot_key),
            ("redis, async", "10,000 keys", remote.allow_request, many_keys),
            ("floor: EVALSHA minimal bucket", "async", evalsha, hot_key),
            ("floor: PING", "async", ping, hot_key),
        ]
        rates: list[list[float]] = [[] for _ in cases]
        for _ in range(args.repeat):  # round-robin, as in sync_rows
            for index, (_label, _keys, call, make) in enumerate(cases):
                rates[index].append(await athroughput(call, make(), args.seconds, tasks))
        for (label, keys, _call, _make), values in zip(cases, rates, strict=True):
            name = f"{label}, {tasks} task{'s' if tasks > 1 else ''}"
            rows.append((name, keys, spread(values), float("nan")))
    await client.aclose()
    await pool.disconnect()
    return rows


def redis_cost(client: redis.Redis, run: Callable[[], None], calls: int) -> tuple[float, float]:
    """(round trips sent by the client, commands run inside Redis) per call."""
    client.config_resetstat()
    trips_before = round_trips()
    run()
    trips = round_trips() - trips_before
    stats = client.info("commandstats")
    commands = sum(
        int(value["calls"])
        for name, value in stats.items()
        if name.split("_", 1)[1] not in {"config", "info"}
    )
    return trips / calls, commands / calls


def cost_rows(url: str) -> list[tuple[str, float, float]]:
    install_round_trip_counter()
    admin = redis.Redis.from_url(url)
    client = redis.Redis.from_url(url)
    client.ping()  # connect before counting
    n = 1000
    rows = []
    allowing = TokenBucketRateLimiter(OPEN, RedisStore(client), key_prefix="cost")
    allowing.allow_request("warm")  # loads the script (NOSCRIPT once) before counting
    trips, commands = redis_cost(
        admin, lambda: [allowing.allow_request(f"k{i}") for i in range(n)], n
    )
    rows.append(("one decision (allowed)", trips, commands))
    for shed in (False, True):
        flood = TokenBucketRateLimiter(
            RateLimitConfig(5, 1e-6), RedisStore(client), key_prefix=f"flood{shed:d}",
            shed_denials=shed,
        )  # fmt: skip
        flood.allow_request("one", 5)
        trips, commands = redis_cost(
            admin, lambda f=flood: [f.allow_request("one") for _ in range(n)], n
        )
        rows.append(
            (f"denied, one-key flood, shedding {'on' if shed else 'off'}", trips, commands)
        )
    admin.close()
    client.close()
    return rows


def floor_for(label: str, throughput: list[Row]) -> float | None:
    """The bare-EVALSHA rate measured in the same style (sync, or async with as many tasks)."""
    style = "sync" if "sync" in label else "async"
    tasks = label.rsplit(", ", 1)[-1] if style == "async" else ""
    for other, keys, (median, _, _), _cpu in throughput:
        if "EVALSHA" in other and keys == style and other.endswith(tasks):
            return median
    return None


def print_tables(throughput: list[Row], costs: list[tuple[str, float, float]], args: Any) -> None:
    print(
        f"# bench/core.py ({platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} cpus; {args.repeat} runs of {args.seconds}s: median [min-max])\n"
    )
    print("| workload | keys | decisions/s | us/decision | client CPU us | vs EVALSHA floor |")
    print("|---|---|---:|---:|---:|---:|")
    for label, keys, (median, low, high), cpu in throughput:
        floor = floor_for(label, throughput) if label.startswith("redis") else None
        ratio = f"{median / floor:.2f}x" if floor else ""
        cpu_text = "" if cpu != cpu else f"{cpu:.1f}"  # NaN: not measured (async)
        print(
            f"| {label} | {keys} | {median:,.0f} [{low:,.0f}-{high:,.0f}] "
            f"| {1e6 / median:.1f} | {cpu_text} | {ratio} |"
        )
    print("\n| Redis cost per request | round trips (client) | commands inside Redis |")
    print("|---|---:|---:|")
    for label, trips, commands in costs:
        print(f"| {label} | {trips:.3f} | {commands:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from ratelimit_app.testing import redis_url_or_private

    with redis_url_or_private(os.environ.get("REDIS_URL")) as url:
        throughput = sync_rows(url, args) + asyncio.run(async_rows(url, args))
        costs = cost_rows(url)
    print_tables(throughput, costs, args)


if __name__ == "__main__":
    main()
