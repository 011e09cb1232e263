"""Decision latency (p50, p99, p99.9) beside throughput, for us, the floor and the peers.

    python3 -m bench.latency [--seconds 1.0] [--repeat 3] [--redis-url URL]

Every call is timed on its own. Sync rows run 1 or 50 threads over one client; async
rows run 1 or 50 tasks on one event loop over one client. The floor is a bare
``EVALSHA`` of the minimal token-bucket script (``bench.core.MINIMAL``) on the same kind
of client; "floor RTT" is its median latency with one caller, the round trip a decision
cannot beat. Table 1: this project (coalescing on and off) and the floor, on one hot key
and over 10,000 keys, with a limit that never denies. Table 2: every peer over 10,000
keys with a bucket of 100 per 60 s (all admissions: each key is hit a few times).
Rounds interleave the rows; each cell is the median over the rounds (latency
percentiles are taken over all calls of a round).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, NamedTuple

import redis
import redis.asyncio as aredis

from ratelimit_app.core import (
    AsyncRedisStore,
    AsyncTokenBucketRateLimiter,
    RedisStore,
    TokenBucketRateLimiter,
)
from ratelimit_app.testing import redis_url_or_private

from . import cli
from .contract import Quota
from .core import MINIMAL, MINIMAL_ARGS, OPEN
from .peer_adapters import PEERS, build, build_async
from .tables import markdown_table
from .timing import hot_key, many_keys

CALLERS = (1, 50)
PEER_QUOTA = Quota(capacity=100, period=60)
Sample = tuple[float, list[int], float]  # decisions/s, latencies in ns, share admitted


class Case(NamedTuple):
    label: str
    keys: str  # "hot key" or "10,000 keys"
    make: Callable[[], Any]  # builds the call (inside the loop for async)


def _keys(kind: str, offset: int) -> Iterator[str]:
    if kind == "hot key":
        return hot_key()
    keys = many_keys()
    for _ in range(offset * 197):  # callers start at different keys
        next(keys)
    return keys


def sync_sample(call: Callable[[str], object], kind: str, seconds: float, callers: int) -> Sample:
    """``callers`` threads call as fast as they can until the deadline."""
    found: list[list[int]] = [[] for _ in range(callers)]
    admitted = [0] * callers
    start = threading.Barrier(callers + 1)
    deadline = [0.0]

    def worker(index: int) -> None:
        keys, times, clock = _keys(kind, index), found[index], time.perf_counter_ns
        start.wait()
        while time.perf_counter() < deadline[0]:
            began = clock()
            admitted[index] += bool(call(next(keys)))
            times.append(clock() - began)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    deadline[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    times = [t for per in found for t in per]
    return len(times) / (time.perf_counter() - began), times, sum(admitted) / max(1, len(times))


async def async_sample(
    call: Callable[[str], Awaitable[object]], kind: str, seconds: float, callers: int
) -> Sample:
    """``callers`` tasks on this loop call as fast as they can until the deadline."""
    found: list[list[int]] = [[] for _ in range(callers)]
    admitted = [0] * callers
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        keys, times, clock = _keys(kind, index), found[index], time.perf_counter_ns
        while time.perf_counter() < deadline:
            began = clock()
            admitted[index] += bool(await call(next(keys)))
            times.append(clock() - began)

    began = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(callers)))
    times = [t for per in found for t in per]
    return len(times) / (time.perf_counter() - began), times, sum(admitted) / max(1, len(times))


def percentiles(times: list[int]) -> tuple[float, float, float]:
    """p50, p99, p99.9 in microseconds."""
    ordered = sorted(times) or [0]
    last = len(ordered) - 1
    return tuple(ordered[int(q * last)] / 1000 for q in (0.5, 0.99, 0.999))  # type: ignore[return-value]


class Row(NamedTuple):
    label: str
    mode: str  # "sync" or "async"
    callers: int
    keys: str
    rate: float
    admitted: float
    p50: float
    p99: float
    p999: float


def summarise(case: Case, mode: str, callers: int, samples: list[Sample]) -> Row:
    cuts = [percentiles(times) for _, times, _ in samples]
    p50, p99, p999 = (statistics.median(cut[i] for cut in cuts) for i in range(3))
    rate = statistics.median(rate for rate, _, _ in samples)
    admitted = statistics.median(share for _, _, share in samples)
    return Row(case.label, mode, callers, case.keys, rate, admitted, p50, p99, p999)


def sync_cases(url: str) -> tuple[list[Case], Callable[[], None]]:
    client = redis.Redis.from_url(url, max_connections=64)
    minimal = client.script_load(MINIMAL)
    ours = TokenBucketRateLimiter(OPEN, RedisStore(client), key_prefix="lat")
    peers = [
        Case(
            spec.name, "10,000 keys", lambda spec=spec: build(spec.name, "redis", url, PEER_QUOTA)
        )
        for spec in PEERS
    ]
    cases = [
        Case("ratelimit_app", "hot key", lambda: ours.allow_request),
        Case("ratelimit_app", "10,000 keys", lambda: ours.allow_request),
        Case("floor: EVALSHA minimal bucket", "hot key", lambda: _sync_floor(client, minimal)),
        *peers,
    ]
    return cases, client.close


def _sync_floor(client: redis.Redis, sha: str) -> Callable[[str], object]:
    return lambda key: client.evalsha(sha, 1, key, *MINIMAL_ARGS)


def async_cases(url: str, client: aredis.Redis, minimal: str) -> list[Case]:
    def ours(coalesce: bool) -> Callable[[str], Awaitable[object]]:
        store = AsyncRedisStore(client, coalesce=coalesce)
        return AsyncTokenBucketRateLimiter(OPEN, store, key_prefix="alat").allow_request

    async def floor(key: str) -> object:
        return await client.evalsha(minimal, 1, key, *MINIMAL_ARGS)  # type: ignore[misc]

    peers = [
        Case(
            spec.name,
            "10,000 keys",
            lambda spec=spec: build_async(spec.name, "redis", url, PEER_QUOTA),
        )
        for spec in PEERS
        if spec.async_ is not None
    ]
    return [
        Case("ratelimit_app", "hot key", lambda: ours(True)),
        Case("ratelimit_app", "10,000 keys", lambda: ours(True)),
        Case("ratelimit_app, COALESCE off", "hot key", lambda: ours(False)),
        Case("ratelimit_app, COALESCE off", "10,000 keys", lambda: ours(False)),
        Case("floor: EVALSHA minimal bucket", "hot key", lambda: floor),
        *peers,
    ]


def rounds(cases: list[Case], repeat: int) -> Iterator[tuple[int, int]]:
    """(callers, case index) in measuring order: every case once per round."""
    for callers in CALLERS:
        for _ in range(repeat):
            for index in range(len(cases)):
                yield callers, index


def rows_of(
    cases: list[Case], mode: str, samples: dict[tuple[int, int], list[Sample]]
) -> list[Row]:
    return [
        summarise(case, mode, callers, samples[callers, index])
        for callers in CALLERS
        for index, case in enumerate(cases)
    ]


def run_sync(url: str, args: argparse.Namespace) -> list[Row]:
    cases, close = sync_cases(url)
    calls = [case.make() for case in cases]
    samples: dict[tuple[int, int], list[Sample]] = defaultdict(list)
    for callers, i in rounds(cases, args.repeat):
        samples[callers, i].append(sync_sample(calls[i], cases[i].keys, args.seconds, callers))
    close()
    return rows_of(cases, "sync", samples)


async def run_async(url: str, args: argparse.Namespace) -> list[Row]:
    pool = aredis.BlockingConnectionPool.from_url(url, max_connections=64, timeout=10)
    client = aredis.Redis(connection_pool=pool)
    cases = async_cases(url, client, await client.script_load(MINIMAL))
    calls = [case.make() for case in cases]
    samples: dict[tuple[int, int], list[Sample]] = defaultdict(list)
    for callers, i in rounds(cases, args.repeat):
        sample = await async_sample(calls[i], cases[i].keys, args.seconds, callers)
        samples[callers, i].append(sample)
    await client.aclose()
    await pool.disconnect()
    return rows_of(cases, "async", samples)


def cells(rows: list[Row], all_rows: list[Row]) -> list[list[str]]:
    def floor(mode: str, callers: int) -> Row:
        return next(
            r
            for r in all_rows
            if r.label.startswith("floor") and (r.mode, r.callers) == (mode, callers)
        )

    out = []
    for row in rows:
        base, rtt = floor(row.mode, row.callers), floor(row.mode, 1).p50
        out.append(
            [
                row.label, row.mode, str(row.callers), row.keys, f"{row.rate:,.0f}",
                f"{row.admitted:.0%}",
                f"{row.p50:,.0f}", f"{row.p99:,.0f}", f"{row.p999:,.0f}",
                f"{row.rate / base.rate:.2f}x", f"{row.p99 / rtt:.1f}",
            ]
        )  # fmt: skip
    return out


HEADER = [
    "workload", "mode", "callers", "keys", "decisions/s", "admitted", "p50 us", "p99 us",
    "p99.9 us", "rate vs floor", "p99 / floor RTT",
]  # fmt: skip


def main() -> None:
    args = cli.parse_rounds(__doc__)
    with redis_url_or_private(args.redis_url) as url:
        rows = run_sync(url, args) + asyncio.run(run_async(url, args))
    print(
        f"# bench.latency ({platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} cpus; {args.repeat} rounds of {args.seconds}s: medians)\n"
    )
    ours = [r for r in rows if r.label.startswith(("ratelimit_app", "floor"))]
    print("## This project and the floor (a limit that never denies)\n")
    print(markdown_table(HEADER, cells(ours, rows), labels=4))
    peers = [r for r in rows if r.label not in ("ratelimit_app", "ratelimit_app, COALESCE off")]
    peers = [r for r in peers if r.keys == "10,000 keys" or r.label.startswith("floor")]
    print("\n## Every library over 10,000 keys (100 per 60 s; all admitted)\n")
    print(markdown_table(HEADER, cells(peers, rows), labels=4))


if __name__ == "__main__":
    main()
