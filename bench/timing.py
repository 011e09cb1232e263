"""Timing primitives shared by the benchmarks: rates, client CPU, rounds, medians.

Rows are measured in interleaved rounds (``interleaved``): round i of every row runs
before round i + 1 of any, so a burst of load from elsewhere on a shared machine falls
on every row alike rather than on whichever happened to run then.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import TypeVar

Sample = tuple[float, float]  # calls per second, client CPU microseconds per call
Case = TypeVar("Case")


def throughput(
    call: Callable[[str], object],
    keys: Iterator[str],
    seconds: float,
    cpu_clock: Callable[[], float] = time.thread_time,
) -> Sample:
    """Calls per second from one thread, and client CPU microseconds per call.

    By default the CPU figure counts only this thread's own work, so it stays comparable
    when other processes load the machine; the wall-clock rate also includes waiting for
    Redis. ``cpu_clock=time.process_time`` adds the threads a library starts itself."""
    done = 0
    start, cpu = time.perf_counter(), cpu_clock()
    deadline = start + seconds
    while True:
        for _ in range(64):
            call(next(keys))
        done += 64
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - start), (cpu_clock() - cpu) * 1e6 / done


async def athroughput(
    call: Callable[[str], Awaitable[object]],
    keys: Iterator[str],
    seconds: float,
    tasks: int = 1,
    cpu_clock: Callable[[], float] = time.thread_time,
) -> Sample:
    """Calls per second from ``tasks`` concurrent tasks on this thread's event loop, and
    client CPU microseconds per call (as in ``throughput``)."""
    done = [0]
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            for _ in range(16):
                await call(next(keys))
            done[0] += 16

    start, cpu = time.perf_counter(), cpu_clock()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    calls = max(done[0], 1)
    return done[0] / (time.perf_counter() - start), (cpu_clock() - cpu) * 1e6 / calls


def interleaved(cases: Sequence[Case], repeat: int) -> Iterator[tuple[int, Case]]:
    """Every case with its index, ``repeat`` times over, round by round."""
    for _ in range(repeat):
        yield from enumerate(cases)


def spread(values: Iterable[float]) -> tuple[float, float, float]:
    """(median, min, max) of the rounds."""
    ordered = sorted(values)
    return statistics.median(ordered), ordered[0], ordered[-1]


def hot_key() -> Iterator[str]:
    while True:
        yield "hot"


def many_keys(count: int = 10_000) -> Iterator[str]:
    while True:
        for i in range(count):
            yield f"client-{i}"
