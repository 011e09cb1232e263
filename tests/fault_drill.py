"""Shared machinery for the fault drills: load that records where each decision came from.

A drill runs real limiters over a real Redis (single node or cluster) while the test
kills, restarts or stalls the server. ``CountingStore`` is a pass-through around the real
store that counts the decisions Redis itself made, per phase, so a test can check the
arithmetic (what Redis admitted, what the failure policy admitted) without guessing.
Every loop is bounded in count and time; drills print their observations (run pytest with
``-s`` to see them) and assert counts and liveness bounds, never speeds.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from ratelimit_app.core import Decision, RateLimitConfig, StoreError
from ratelimit_app.core.stores.base import AsyncStore, Configs, Keys, SyncStore, failure_scope

SOCKET_TIMEOUT = 0.2
RETRIES = 1


def client_options(asyncio: bool = False) -> dict[str, object]:
    """Timeouts plus one retry without back-off (redis-py's default is ten, backing off).

    One retry replaces a pooled connection a restart left dead; a stalled server costs at
    most (1 + RETRIES) socket timeouts per call.
    """
    retry = AsyncRetry(NoBackoff(), RETRIES) if asyncio else Retry(NoBackoff(), RETRIES)
    return {
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": SOCKET_TIMEOUT,
        "retry": retry,
    }


# Liveness, not speed: the worst a call may take is every attempt timing out, plus slack
# for a loaded two-core machine.
CALL_BOUND = (1 + RETRIES) * 2 * SOCKET_TIMEOUT + 1.0
MODES = ["fallback", "allow", "deny", "raise"]
# Capacity 20 with a refill too slow to matter within a drill.
DRILL = RateLimitConfig(capacity=20, refill_rate=1e-6)


@dataclass
class Call:
    phase: str
    allowed: bool | None  # None when the call raised
    error: str | None  # the exception's type name when it raised
    seconds: float
    from_store: bool  # True when Redis itself made the decision


@dataclass
class Recorder:
    """Thread-safe log of calls, with the phase the drill is in when each call starts."""

    phase: str = "before"
    calls: list[Call] = field(default_factory=list)
    store_answers: Counter[str] = field(default_factory=Counter)
    store_admits: Counter[str] = field(default_factory=Counter)
    store_failures: Counter[str] = field(default_factory=Counter)
    failure_kinds: Counter[tuple[str, str]] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def store_answered(self, phase: str, decision: Decision) -> None:
        with self.lock:
            self.store_answers[phase] += 1
            self.store_admits[phase] += decision.allowed

    def store_failed(self, phase: str, error: StoreError) -> None:
        kind = type(error.__cause__).__name__
        with self.lock:
            self.store_failures[phase] += 1
            self.failure_kinds[phase, kind] += 1

    def kinds(self, phase: str) -> dict[str, int]:
        with self.lock:
            return {kind: n for (where, kind), n in self.failure_kinds.items() if where == phase}

    def add(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)

    def in_phase(self, *phases: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.phase in phases]

    def admitted(self, *phases: str) -> int:
        return sum(bool(c.allowed) for c in self.in_phase(*phases))

    def by_policy(self, *phases: str) -> list[Call]:
        return [c for c in self.in_phase(*phases) if not c.from_store and c.error is None]

    def errors(self, *phases: str) -> Counter[str]:
        return Counter(c.error for c in self.in_phase(*phases) if c.error is not None)

    def slowest(self, *phases: str) -> float:
        return max((c.seconds for c in self.in_phase(*phases)), default=0.0)

    def summary(self, phases: Iterable[str]) -> str:
        rows = []
        for phase in phases:
            calls = self.in_phase(phase)
            rows.append(
                f"{phase:>9}: calls={len(calls)} admitted={self.admitted(phase)}"
                f" redis_answered={self.store_answers[phase]}"
                f" redis_admitted={self.store_admits[phase]}"
                f" redis_failed={self.kinds(phase)}"
                f" policy_answered={len(self.by_policy(phase))}"
                f" errors={dict(self.errors(phase))} slowest={self.slowest(phase):.3f}s"
            )
        return "\n".join(rows)


# Per call (thread or task): the phase it started in, and whether Redis answered it.
_phase: contextvars.ContextVar[str] = contextvars.ContextVar("drill_phase", default="?")
_answered: contextvars.ContextVar[bool] = contextvars.ContextVar("drill_answered", default=False)


class CountingStore:
    """The real store, unchanged, plus a tally of the decisions it made in each phase."""

    def __init__(self, store: SyncStore, recorder: Recorder) -> None:
        self.store = store
        self.recorder = recorder

    def take_all(self, keys: Keys, configs: Configs, cost: float) -> Decision:
        try:
            decision = self.store.take_all(keys, configs, cost)
        except StoreError as error:
            self.recorder.store_failed(_phase.get(), error)
            raise
        self.recorder.store_answered(_phase.get(), decision)
        _answered.set(True)
        return decision

    def peek_all(self, keys: Keys, configs: Configs) -> Decision:
        return self.store.peek_all(keys, configs)

    def reset(self, keys: Keys) -> None:
        self.store.reset(keys)

    def failure_scope(self, keys: Keys) -> str | None:
        return failure_scope(self.store, keys)


class AsyncCountingStore:
    """The async twin of ``CountingStore``."""

    def __init__(self, store: AsyncStore, recorder: Recorder) -> None:
        self.store = store
        self.recorder = recorder

    async def take_all(self, keys: Keys, configs: Configs, cost: float) -> Decision:
        try:
            decision = await self.store.take_all(keys, configs, cost)
        except StoreError as error:
            self.recorder.store_failed(_phase.get(), error)
            raise
        self.recorder.store_answered(_phase.get(), decision)
        _answered.set(True)
        return decision

    async def peek_all(self, keys: Keys, configs: Configs) -> Decision:
        return await self.store.peek_all(keys, configs)

    async def reset(self, keys: Keys) -> None:
        await self.store.reset(keys)


def _begin(recorder: Recorder) -> tuple[str, float]:
    phase = recorder.phase
    _phase.set(phase)
    _answered.set(False)
    return phase, time.monotonic()


def _end(recorder: Recorder, phase: str, started: float, decision: Decision | None) -> None:
    seconds = time.monotonic() - started
    if decision is None:
        recorder.add(Call(phase, None, "StoreError", seconds, False))
    else:
        recorder.add(Call(phase, decision.allowed, None, seconds, _answered.get()))


def timed_call(recorder: Recorder, decide: Callable[[], Decision]) -> None:
    """Run one decision, recording outcome, source and duration; only StoreError is caught."""
    phase, started = _begin(recorder)
    try:
        decision: Decision | None = decide()
    except StoreError:
        decision = None
    _end(recorder, phase, started, decision)


async def timed_acall(recorder: Recorder, decide: Callable[[], Awaitable[Decision]]) -> None:
    """The async twin of ``timed_call`` (each task keeps its own context)."""
    phase, started = _begin(recorder)
    try:
        decision: Decision | None = await decide()
    except StoreError:
        decision = None
    _end(recorder, phase, started, decision)


class Load:
    """``threads`` threads each calling ``step()`` until stopped (bounded by ``max_calls``)."""

    def __init__(self, step: Callable[[int], None], threads: int = 4, max_calls: int = 5000):
        self.stop_event = threading.Event()
        self.failures: list[BaseException] = []

        def loop(n: int) -> None:
            try:
                for _ in range(max_calls):
                    if self.stop_event.is_set():
                        return
                    step(n)
                    time.sleep(0.002)
            except BaseException as exc:  # anything but StoreError is a drill failure
                self.failures.append(exc)

        self.threads = [threading.Thread(target=loop, args=(n,)) for n in range(threads)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=30)
        assert not any(t.is_alive() for t in self.threads), "a drill thread hung"


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``predicate``; return the seconds it took, fail the drill after ``timeout``."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"drill: {what} not seen within {timeout}s")
        time.sleep(0.01)
    return time.monotonic() - started


async def async_load(
    step: Callable[[], Awaitable[None]], stop: asyncio.Event, max_calls: int = 5000
) -> None:
    """One task's share of the load: ``step()`` until ``stop`` is set, bounded in count."""
    for _ in range(max_calls):
        if stop.is_set():
            return
        await step()
        await asyncio.sleep(0.002)


async def await_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """The async twin of ``wait_until``: yields to the load while it polls."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"drill: {what} not seen within {timeout}s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


@asynccontextmanager
async def deciding(
    recorder: Recorder, decide: Callable[[], Awaitable[Decision]], tasks: int = 8
) -> AsyncIterator[None]:
    """``tasks`` tasks each calling ``decide`` (recorded) until the block ends; then
    re-raises anything but ``StoreError`` that escaped them."""
    stop = asyncio.Event()

    async def step() -> None:
        await timed_acall(recorder, decide)

    running = [asyncio.create_task(async_load(step, stop)) for _ in range(tasks)]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*running)
