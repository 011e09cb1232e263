"""Measuring primitives shared by the benchmarks: rates, repetitions, round-trip counts.

Round trips are counted on the client: redis-py writes each command (or pipeline) with one
``send_packed_command`` call, sync and async, so wrapping that method counts round trips
whatever a library does above it.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import redis.asyncio.connection
import redis.connection

_TRIPS = [0]


def install_round_trip_counter() -> None:
    """Wrap redis-py's single write path, sync and async, once per process."""
    sync_cls: Any = redis.connection.AbstractConnection
    async_cls: Any = redis.asyncio.connection.AbstractConnection
    if getattr(sync_cls, "_bench_counted", False):
        return
    sync_send, async_send = sync_cls.send_packed_command, async_cls.send_packed_command

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        _TRIPS[0] += 1
        return sync_send(self, *args, **kwargs)

    async def acounted(self: Any, *args: Any, **kwargs: Any) -> Any:
        _TRIPS[0] += 1
        return await async_send(self, *args, **kwargs)

    sync_cls.send_packed_command, async_cls.send_packed_command = counted, acounted
    sync_cls._bench_counted = True


def round_trips() -> int:
    return _TRIPS[0]


def rate(call: Callable[[str], object], keys: Iterator[str], seconds: float) -> float:
    """Calls per second from one thread, checking the clock every 64 calls."""
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(64):
            call(next(keys))
        done += 64
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - start)


async def arate(
    call: Callable[[str], Awaitable[object]], keys: Iterator[str], seconds: float, tasks: int
) -> float:
    """Calls per second from ``tasks`` concurrent tasks on one event loop."""
    done = [0]
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            for _ in range(16):
                await call(next(keys))
            done[0] += 16

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return done[0] / (time.perf_counter() - start)


def repeat(measure: Callable[[], float], times: int) -> tuple[float, float, float]:
    """(median, min, max) of ``times`` runs."""
    values = [measure() for _ in range(times)]
    return statistics.median(values), min(values), max(values)


def hot_key() -> Iterator[str]:
    while True:
        yield "hot"


def many_keys(count: int = 10_000) -> Iterator[str]:
    while True:
        for i in range(count):
            yield f"client-{i}"


def cpu_per_call(call: Callable[[str], object], keys: Iterator[str], calls: int = 2000) -> float:
    """Microseconds of this process's CPU per call (best of 3): steadier than wall time
    on a shared machine, and what a limiter adds to a request."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for _ in range(calls):
            call(next(keys))
        best = min(best, (time.process_time() - start) / calls * 1e6)
    return best
