"""Measuring primitives shared by the benchmarks (core.py, peers.py): rates, client CPU,
repetitions, round-trip counts.

Round trips are counted on the client: redis-py writes each command (or pipeline) with one
``send_packed_command`` call, sync and async, so wrapping that method counts round trips
whatever a library does above it.
"""

from __future__ import annotations

import asyncio
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


def throughput(
    call: Callable[[str], object], keys: Iterator[str], seconds: float
) -> tuple[float, float]:
    """(calls per second, client CPU microseconds per call), one thread.

    The CPU figure counts only this thread's own work, so it stays comparable when other
    processes load the machine; the wall-clock rate also includes waiting for Redis."""
    done = 0
    start, cpu = time.perf_counter(), time.thread_time()
    deadline = start + seconds
    while True:
        for _ in range(64):
            call(next(keys))
        done += 64
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - start), (time.thread_time() - cpu) * 1e6 / done


async def athroughput(
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


def hot_key() -> Iterator[str]:
    while True:
        yield "hot"


def many_keys(count: int = 10_000) -> Iterator[str]:
    while True:
        for i in range(count):
            yield f"client-{i}"
