"""Waiting for tokens instead of failing: ``acquire`` and its context-manager form.

For the caller's own outbound traffic (a third-party API that allows 10 calls a second),
a denial is not an answer to give anyone: the caller wants to go as soon as the bucket
allows. A denial says exactly when that is (``retry_after``), so ``acquire`` sleeps that
long and asks again: no polling loop, no guessing. With a ``timeout`` it gives up *before*
sleeping when the wait would end past the deadline, so it never sleeps in vain.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncContextDecorator, ContextDecorator
from typing import TYPE_CHECKING, Any

from .bucket import Decision
from .config import Problem, check_number

if TYPE_CHECKING:
    from .limiter import AsyncTokenBucketRateLimiter, TokenBucketRateLimiter

__all__ = ["Acquiring", "AsyncAcquiring", "RateLimitTimeout", "aacquire", "acquire"]

# Added to every wait: one microsecond, the resolution of Redis TIME and far above a
# float's rounding at any clock reading, so a wait ends with the tokens there (a hair
# short would mean another, tiny wait) and a manual clock always moves.
PAD = 1e-6

Sleep = Callable[[float], Any]
AsyncSleep = Callable[[float], Awaitable[Any]]


class RateLimitTimeout(Exception):
    """The bucket cannot admit the request before the timeout ends; ``decision`` is the
    last denial, whose ``retry_after`` says how long it would have taken."""

    def __init__(self, decision: Decision, timeout: float) -> None:
        super().__init__(
            f"rate limit: no tokens within {timeout:g} s "
            f"(next admission in {decision.retry_after:.3f} s)"
        )
        self.decision = decision
        self.timeout = timeout


class _Deadline:
    """The clock a wait is measured on, and when it runs out."""

    def __init__(self, limiter: Any, timeout: float | None) -> None:
        clock = getattr(limiter.store, "clock", None)
        self.clock: Callable[[], float] = clock if callable(clock) else time.monotonic
        if timeout is not None:
            timeout = check_number(timeout, "timeout", inclusive=True, kind=Problem.VALUE)
        self.timeout = timeout
        self.ends = None if timeout is None else self.clock() + timeout

    def wait_for(self, decision: Decision) -> float:
        """Seconds to sleep before asking again; raises when that would pass the end."""
        wait = decision.retry_after + PAD
        if self.ends is not None and self.clock() + wait > self.ends:
            raise RateLimitTimeout(decision, self.timeout or 0.0)
        return wait


def acquire(
    limiter: TokenBucketRateLimiter,
    identity: str,
    cost: float = 1,
    timeout: float | None = None,
    sleep: Sleep = time.sleep,
) -> Decision:
    deadline = _Deadline(limiter, timeout)
    while not (decision := limiter.allow_request(identity, cost)).allowed:
        sleep(deadline.wait_for(decision))
    return decision


async def aacquire(
    limiter: AsyncTokenBucketRateLimiter,
    identity: str,
    cost: float = 1,
    timeout: float | None = None,
    sleep: AsyncSleep = asyncio.sleep,
) -> Decision:
    deadline = _Deadline(limiter, timeout)
    while not (decision := await limiter.allow_request(identity, cost)).allowed:
        await sleep(deadline.wait_for(decision))
    return decision


class Acquiring(ContextDecorator):
    """``with limiter.acquiring(identity):`` or ``@limiter.acquiring(identity)``: waits for
    the tokens on entry (they are taken up front, so nothing happens on exit)."""

    def __init__(self, limiter: TokenBucketRateLimiter, identity: str, **options: Any) -> None:
        self.limiter, self.identity, self.options = limiter, identity, options
        self.decision: Decision | None = None

    def __enter__(self) -> Decision:
        self.decision = acquire(self.limiter, self.identity, **self.options)
        return self.decision

    def __exit__(self, *exc: object) -> None:
        return None


class AsyncAcquiring(AsyncContextDecorator):
    """The async twin: ``async with`` or a decorator on a coroutine function."""

    def __init__(
        self, limiter: AsyncTokenBucketRateLimiter, identity: str, **options: Any
    ) -> None:
        self.limiter, self.identity, self.options = limiter, identity, options
        self.decision: Decision | None = None

    async def __aenter__(self) -> Decision:
        self.decision = await aacquire(self.limiter, self.identity, **self.options)
        return self.decision

    async def __aexit__(self, *exc: object) -> None:
        return None
