"""The limiters users call: key building, cost checks and the failure policy around a store.

The sync and async classes share ``_LimiterBase``; each method differs from its twin
only in the awaited store call. A limiter guards one bucket per identity, or several at
once (a composite policy such as 10 per second and 1000 per hour): a request then
consumes from every bucket or from none, in one atomic store call.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import time
from collections.abc import Sequence
from time import perf_counter
from typing import Any, NamedTuple

from .bucket import Decision
from .config import ConfigError, RateLimitConfig, check_policy_name
from .denial_log import DenialLog
from .events import Event, hub
from .failure import StoreFailureHandler
from .keys import build_key, build_keys, check_prefix, format_keys, log_identity, safe_identity
from .shedding import DenialCache
from .stores.base import AsyncStore, StoreError, SyncStore, failure_scope
from .stores.memory import AsyncMemoryStore, MemoryStore
from .waiting import Acquiring, AsyncAcquiring, AsyncSleep, Sleep, aacquire, acquire

__all__ = ["AsyncTokenBucketRateLimiter", "Prepared", "TokenBucketRateLimiter"]

logger = logging.getLogger("ratelimit_app")
denial_log = DenialLog(logger)
# A window still open when the process exits is logged, not lost: atexit runs this before
# logging's own shutdown (registered earlier). uvicorn ends its processes by re-raising
# SIGTERM, which skips atexit: FastAPI's lifespan flushes on shutdown instead.
atexit.register(denial_log.flush)
# How a denial was reached -> its event outcome.
_DENIED = {"store": "denied", "shed": "shed", "failure": "failure_denied"}


class Prepared(NamedTuple):
    """A request ready for the store, or already answered without it."""

    key: str  # the identity's key: the denial memory and logs know it by this
    keys: tuple[str, ...]  # one per bucket
    cost: float
    decision: Decision | None  # set when the denial memory or the back-off answered
    sent_at: float  # our clock when the request left (0.0 without a denial memory)
    via: str  # who answered: "store", or "shed" / "failure" when decision is set


def _configs(config: RateLimitConfig | Sequence[RateLimitConfig]) -> tuple[RateLimitConfig, ...]:
    configs = (config,) if isinstance(config, RateLimitConfig) else tuple(config)
    if not configs or not all(isinstance(c, RateLimitConfig) for c in configs):
        raise ConfigError(
            f"config must be a RateLimitConfig or a non-empty sequence of them, got {config!r}"
        )
    return configs


def _failure_handler(on_store_error: str | StoreFailureHandler) -> StoreFailureHandler:
    if isinstance(on_store_error, StoreFailureHandler):
        return on_store_error
    return StoreFailureHandler(on_store_error)


class _LimiterBase:
    store: SyncStore | AsyncStore

    def __init__(
        self,
        config: RateLimitConfig | Sequence[RateLimitConfig],
        store: SyncStore | AsyncStore,
        *,
        name: str = "default",
        key_prefix: str = "rl",
        on_store_error: str | StoreFailureHandler = "fallback",
        shed_denials: bool | None = None,
        shadow: bool = False,
        tier: str | None = None,
    ) -> None:
        self.configs = _configs(config)
        #: Shadow mode: decide and store as usual, report denials, let every request pass.
        self.shadow = shadow
        #: The bucket that bounds the cost (for a single-bucket policy, its only bucket).
        self.smallest = min(self.configs, key=lambda c: c.capacity)
        if not isinstance(store, (SyncStore, AsyncStore)):
            raise ConfigError(
                f"{type(store).__name__} is not a rate-limit store: a store answers for "
                "one or several buckets per call with take_all, peek_all and reset"
            )
        self.store = store
        self.store_name = type(store).__name__
        self.name = check_policy_name(name)
        #: The tier of a tiered policy this limiter serves (None: the policy has no tiers).
        self.tier = tier
        #: The keys' policy segment: ``<policy>``, or ``<policy>:<tier>`` for a tier.
        self.bucket_name = self.name if tier is None else f"{self.name}:{tier}"
        self.key_prefix = check_prefix(key_prefix)
        self.failure = _failure_handler(on_store_error)
        if shed_denials is None:  # local stores answer as fast as the cache would
            shed_denials = not isinstance(store, (MemoryStore, AsyncMemoryStore))
        self.denials = (
            DenialCache(clock=getattr(store, "clock", None) or time.monotonic)
            if shed_denials
            else None
        )

    def key_for(self, identity: str) -> str:
        """The identity's key: its bucket's key, or for a composite policy the name that
        logs and the denial memory use (the buckets themselves are ``keys_for``)."""
        return build_key(self.key_prefix, self.bucket_name, identity)

    def keys_for(self, identity: str) -> tuple[str, ...]:
        return build_keys(self.key_prefix, self.bucket_name, identity, len(self.configs))

    def _prepare(self, identity: str, cost: float) -> Prepared:
        """Validate and build the keys; answer at once when a known denial proves the
        outcome or the store is backing off."""
        cost = self.smallest.check_cost(cost)
        keys = self.keys_for(identity)
        key = keys[0] if len(keys) == 1 else self.key_for(identity)
        denials = self.denials
        sent_at = 0.0
        if denials is not None:
            sent_at = denials.clock()
            shed = denials.check(key, cost, sent_at)
            if shed is not None:
                return Prepared(key, keys, cost, shed, sent_at, "shed")
        failure = self.failure
        if failure.down_until is not None and failure.should_skip_store(self._scope(keys)):
            decision = failure.decide(keys, self.configs, cost)
            return Prepared(key, keys, cost, decision, sent_at, "failure")
        return Prepared(key, keys, cost, None, sent_at, "store")

    def _scope(self, keys: tuple[str, ...]) -> str | None:
        """The part of the store ``keys`` live in, for a per-node back-off (a cluster's
        master; None: the whole store). Asked only while something is backing off."""
        return failure_scope(self.store, keys)

    def _stored(
        self, key: str, keys: tuple[str, ...], decision: Decision, sent_at: float
    ) -> Decision:
        """Bookkeeping after the store answered."""
        failure = self.failure
        if failure.down_until is not None and failure.succeeded(self._scope(keys)):
            if hub.listeners:
                self._emit("store_recovered", "", None, 0.0)
        if self.denials is not None:
            self.denials.learn(key, decision, sent_at)
        return decision

    def _finish(self, identity: str, decision: Decision, via: str, started: float) -> Decision:
        """Report the decision (an event if anyone listens, a log line) and apply shadow
        mode. ``started`` is 0.0 when no listener was registered as the call began.
        Logs carry the identity's digest only; the level is checked before hashing."""
        if decision.allowed:
            if started:
                self._emit("failure_allowed" if via == "failure" else "allowed",
                           identity, decision, started)  # fmt: skip
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "allowed: policy=%s identity=%s cost=%g remaining=%.3f",
                    self.name, log_identity(identity), decision.cost, decision.remaining,
                )  # fmt: skip
            return decision
        outcome = "shadow_denied" if self.shadow else _DENIED[via]
        if started:
            self._emit(outcome, identity, decision, started)
        if logger.isEnabledFor(logging.INFO):
            denial_log.denied(
                self.name, log_identity(identity), outcome, decision.cost, decision.retry_after
            )
        if self.shadow:  # what enforce mode would report, except that the request passes
            return Decision(True, decision.remaining, decision.cost, decision.config, True)
        return decision

    def _emit(
        self,
        outcome: str,
        identity: str,
        decision: Decision | None,
        started: float,
        cost: float = 0.0,
    ) -> None:
        latency = perf_counter() - started if started else 0.0
        digest = log_identity(identity) if identity else ""
        if decision is None:
            capacity = self.smallest.capacity
            hub.emit(Event(self.name, outcome, cost, 0.0, 0.0, capacity,
                           self.store_name, latency, digest, self))  # fmt: skip
            return
        hub.emit(
            Event(
                self.name, outcome, decision.cost, decision.remaining, decision.retry_after,
                decision.config.capacity, self.store_name, latency, digest, self,
            )
        )  # fmt: skip

    def forget(self, identity: str, *, stored: bool = False) -> tuple[str, ...]:
        """Drop what this process remembers of the identity's buckets (the fallback
        store's copy and the denial memory); returns the bucket keys. ``reset`` calls it;
        call it yourself after changing the store behind the limiter's back.
        ``stored=True``: the identity is as a key holds it (a digest for a hashed one)."""
        safe = identity if stored else safe_identity(identity)
        keys = format_keys(self.key_prefix, self.bucket_name, safe, len(self.configs))
        self.failure.fallback_store.reset(keys)
        if self.denials is not None:
            name = self.bucket_name
            single = keys if len(keys) == 1 else format_keys(self.key_prefix, name, safe, 1)
            self.denials.forget(single[0])
        return keys

    def _refunding(self, identity: str, cost: float) -> tuple[tuple[str, ...], float, Any]:
        """A refund's keys and checked cost, and the store's ``adjust`` (None while the
        store is backing off). A refund makes a remembered denial stale, so this process
        forgets it; other processes' memories expire within ``DenialCache.max_age`` and
        can only refuse early, never admit too much."""
        cost = self.smallest.check_cost(cost)
        keys = self.keys_for(identity)
        if self.denials is not None:
            self.denials.forget(keys[0] if len(keys) == 1 else self.key_for(identity))
        adjust = getattr(self.store, "adjust", None)
        if adjust is None:
            raise ConfigError(f"{self.store_name} cannot give tokens back: it has no adjust")
        failure = self.failure
        if failure.down_until is not None and failure.should_skip_store(self._scope(keys)):
            return keys, cost, None
        return keys, cost, adjust

    def _refunded(self, identity: str, keys: tuple[str, ...], cost: float, failed: Any) -> bool:
        """Report a refund the store made (``failed`` None), or make it where the failure
        policy took the tokens (the fallback memory); True if tokens went back."""
        if failed is None:
            if hub.listeners:
                self._emit("refunded", identity, None, 0.0, cost)
            return True
        if isinstance(failed, StoreError):
            self.failure.failed(failed, self._scope(keys))
        if self.failure.mode != "fallback":
            return False
        self.failure.fallback_store.adjust(keys, self.configs, cost)
        return True

    def _on_error(self, error: StoreError, keys: tuple[str, ...], cost: float | None) -> Decision:
        self.failure.failed(error, self._scope(keys))
        if hub.listeners:
            self._emit("store_error", "", None, 0.0)
        if self.failure.mode == "raise":
            raise error
        if cost is None:
            return self.failure.peek(keys, self.configs)
        return self.failure.decide(keys, self.configs, cost)


class TokenBucketRateLimiter(_LimiterBase):
    """``allow_request(identity, cost)`` against a ``SyncStore``."""

    store: SyncStore

    def allow_request(self, identity: str, cost: float = 1) -> Decision:
        started = perf_counter() if hub.listeners else 0.0
        key, keys, cost, decision, sent_at, via = self._prepare(identity, cost)
        if decision is None:
            try:
                decision = self._stored(
                    key, keys, self.store.take_all(keys, self.configs, cost), sent_at
                )
            except StoreError as error:
                decision, via = self._on_error(error, keys, cost), "failure"
        return self._finish(identity, decision, via, started)

    def peek(self, identity: str) -> Decision:
        keys = self.keys_for(identity)
        if self.failure.down_until is not None and self.failure.should_skip_store(
            self._scope(keys)
        ):
            return self.failure.peek(keys, self.configs)
        try:
            return self.store.peek_all(keys, self.configs)
        except StoreError as error:
            return self._on_error(error, keys, None)

    def reset(self, identity: str) -> None:
        self.store.reset(self.forget(identity))

    def refund(self, identity: str, cost: float = 1) -> bool:
        """Give back ``cost`` tokens an admitted request took (its outcome says it should
        not count): every bucket of the policy at once, capped at capacity, in one atomic
        store call. Never raises for a failing store; returns whether tokens went back."""
        keys, cost, adjust = self._refunding(identity, cost)
        if adjust is None:
            return self._refunded(identity, keys, cost, True)
        try:
            adjust(keys, self.configs, cost)
        except StoreError as error:
            return self._refunded(identity, keys, cost, error)
        return self._refunded(identity, keys, cost, None)

    def acquire(
        self,
        identity: str,
        cost: float = 1,
        timeout: float | None = None,
        *,
        sleep: Sleep = time.sleep,
    ) -> Decision:
        """Wait until admitted, sleeping exactly each denial's ``retry_after``; raises
        ``RateLimitTimeout`` instead of sleeping past ``timeout`` seconds."""
        return acquire(self, identity, cost, timeout, sleep)

    def acquiring(self, identity: str, cost: float = 1, timeout: float | None = None) -> Acquiring:
        """``acquire`` as a context manager or a decorator."""
        return Acquiring(self, identity, cost=cost, timeout=timeout)


class AsyncTokenBucketRateLimiter(_LimiterBase):
    """The async twin over an ``AsyncStore``."""

    store: AsyncStore

    async def allow_request(self, identity: str, cost: float = 1) -> Decision:
        started = perf_counter() if hub.listeners else 0.0
        key, keys, cost, decision, sent_at, via = self._prepare(identity, cost)
        if decision is None:
            try:
                decision = self._stored(
                    key, keys, await self.store.take_all(keys, self.configs, cost), sent_at
                )
            except StoreError as error:
                decision, via = self._on_error(error, keys, cost), "failure"
        return self._finish(identity, decision, via, started)

    async def peek(self, identity: str) -> Decision:
        keys = self.keys_for(identity)
        if self.failure.down_until is not None and self.failure.should_skip_store(
            self._scope(keys)
        ):
            return self.failure.peek(keys, self.configs)
        try:
            return await self.store.peek_all(keys, self.configs)
        except StoreError as error:
            return self._on_error(error, keys, None)

    async def reset(self, identity: str) -> None:
        await self.store.reset(self.forget(identity))

    async def refund(self, identity: str, cost: float = 1) -> bool:
        keys, cost, adjust = self._refunding(identity, cost)
        if adjust is None:
            return self._refunded(identity, keys, cost, True)
        try:
            await adjust(keys, self.configs, cost)
        except StoreError as error:
            return self._refunded(identity, keys, cost, error)
        return self._refunded(identity, keys, cost, None)

    async def acquire(
        self,
        identity: str,
        cost: float = 1,
        timeout: float | None = None,
        *,
        sleep: AsyncSleep = asyncio.sleep,
    ) -> Decision:
        return await aacquire(self, identity, cost, timeout, sleep)

    def acquiring(
        self, identity: str, cost: float = 1, timeout: float | None = None
    ) -> AsyncAcquiring:
        return AsyncAcquiring(self, identity, cost=cost, timeout=timeout)
