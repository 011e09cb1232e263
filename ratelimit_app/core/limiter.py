"""The limiters users call: key building, cost checks and the failure policy around a store.

The sync and async classes share ``_LimiterBase``; each method differs from its twin
only in the awaited store call. A limiter guards one bucket per identity, or several at
once (a composite policy such as 10 per second and 1000 per hour): a request then
consumes from every bucket or from none, in one atomic store call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from .bucket import Decision
from .config import ConfigError, RateLimitConfig, check_policy_name
from .failure import StoreFailureHandler, Target
from .keys import build_key, check_prefix, composite_keys, log_identity
from .shedding import DenialCache
from .stores.base import AsyncStore, StoreError, SyncStore
from .stores.memory import AsyncMemoryStore, MemoryStore

__all__ = ["AsyncTokenBucketRateLimiter", "TokenBucketRateLimiter"]

logger = logging.getLogger("ratelimit_app")


def _configs(config: RateLimitConfig | Sequence[RateLimitConfig]) -> tuple[RateLimitConfig, ...]:
    configs = (config,) if isinstance(config, RateLimitConfig) else tuple(config)
    if not configs or not all(isinstance(c, RateLimitConfig) for c in configs):
        raise ConfigError(
            f"config must be a RateLimitConfig or a non-empty sequence of them, got {config!r}"
        )
    return configs


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
    ) -> None:
        self.configs = _configs(config)
        # The smallest bucket bounds the cost; for one bucket it is simply the config.
        self.config = min(self.configs, key=lambda c: c.capacity)
        self.composite = len(self.configs) > 1
        if self.composite and not hasattr(store, "take_all"):
            raise ConfigError(
                f"{type(store).__name__} cannot check several buckets at once (no take_all); "
                "use a single-bucket policy with it"
            )
        self.store = store
        self.name = check_policy_name(name)
        self.key_prefix = check_prefix(key_prefix)
        self.failure = (
            on_store_error
            if isinstance(on_store_error, StoreFailureHandler)
            else StoreFailureHandler(on_store_error)
        )
        if shed_denials is None:  # local stores answer as fast as the cache would
            shed_denials = not isinstance(store, (MemoryStore, AsyncMemoryStore))
        self.denials = (
            DenialCache(clock=getattr(store, "clock", None) or time.monotonic)
            if shed_denials
            else None
        )

    def key_for(self, identity: str) -> str:
        """The key of the identity's bucket (for a composite policy: its name for logs and
        the denial memory; the buckets themselves are ``keys_for``)."""
        return build_key(self.key_prefix, self.name, identity)

    def keys_for(self, identity: str) -> tuple[str, ...]:
        if not self.composite:
            return (self.key_for(identity),)
        return composite_keys(self.key_prefix, self.name, identity, len(self.configs))

    def _target(self, identity: str, key: str) -> Target:
        """What the store is asked about: one key, or every bucket's key."""
        return self.keys_for(identity) if self.composite else key

    def _prepare(
        self, identity: str, cost: float
    ) -> tuple[str, Target, float, Decision | None, float]:
        """Validate and build the keys; answer at once when a known denial proves the
        outcome or the store is backing off. Also returns the time the request leaves."""
        cost = self.config.check_cost(cost)
        key = build_key(self.key_prefix, self.name, identity)
        target = self.keys_for(identity) if self.composite else key
        denials = self.denials
        if denials is None:
            sent_at = 0.0
        else:
            sent_at = denials.clock()
            shed = denials.check(key, cost, sent_at)
            if shed is not None:
                return key, target, cost, shed, sent_at
        failure = self.failure
        if failure.down_until is not None and failure.should_skip_store():
            return key, target, cost, failure.decide(target, self.configs, cost), sent_at
        return key, target, cost, None, sent_at

    def _stored(self, key: str, decision: Decision, sent_at: float) -> Decision:
        """Bookkeeping after the store answered."""
        if self.failure.down_until is not None:
            self.failure.succeeded()
        if self.denials is not None:
            self.denials.learn(key, decision, sent_at)
        return decision

    def _finish(self, identity: str, decision: Decision) -> Decision:
        """Log the decision: denials at INFO with a hashed identity, admissions at DEBUG.
        The level is checked first: hashing an identity costs more than a decision."""
        if decision.allowed:
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "allowed: policy=%s identity=%s cost=%g remaining=%.3f",
                    self.name, identity, decision.cost, decision.remaining,
                )  # fmt: skip
        elif logger.isEnabledFor(logging.INFO):
            logger.info(
                "rate limited: policy=%s identity=%s cost=%g retry_after=%.3f",
                self.name, log_identity(identity), decision.cost, decision.retry_after,
            )  # fmt: skip
        return decision

    def _forget(self, identity: str) -> tuple[str, ...]:
        """Drop what this process remembers of a bucket before the store resets it."""
        keys = self.keys_for(identity)
        for key in keys:
            self.failure.fallback_store.reset(key)
        if self.denials is not None:
            self.denials.forget(self.key_for(identity))
        return keys

    def _on_error(self, error: StoreError, target: Target, cost: float | None) -> Decision:
        self.failure.failed(error)
        if self.failure.mode == "raise":
            raise error
        if cost is None:
            return self.failure.peek(target, self.configs)
        return self.failure.decide(target, self.configs, cost)


class TokenBucketRateLimiter(_LimiterBase):
    """``allow_request(identity, cost)`` against a ``SyncStore``."""

    store: SyncStore

    def allow_request(self, identity: str, cost: float = 1) -> Decision:
        key, target, cost, decision, sent_at = self._prepare(identity, cost)
        if decision is None:
            try:
                decision = self._stored(key, self._take(target, cost), sent_at)
            except StoreError as error:
                decision = self._on_error(error, target, cost)
        return self._finish(identity, decision)

    def _take(self, target: Target, cost: float) -> Decision:
        if type(target) is str:
            return self.store.take(target, self.config, cost)
        return self.store.take_all(target, self.configs, cost)  # type: ignore[attr-defined, no-any-return]

    def peek(self, identity: str) -> Decision:
        target = self._target(identity, self.key_for(identity))
        if self.failure.should_skip_store():
            return self.failure.peek(target, self.configs)
        try:
            if isinstance(target, str):
                return self.store.peek(target, self.config)
            return self.store.peek_all(target, self.configs)  # type: ignore[attr-defined, no-any-return]
        except StoreError as error:
            return self._on_error(error, target, None)

    def reset(self, identity: str) -> None:
        for key in self._forget(identity):
            self.store.reset(key)


class AsyncTokenBucketRateLimiter(_LimiterBase):
    """The async twin over an ``AsyncStore``."""

    store: AsyncStore

    async def allow_request(self, identity: str, cost: float = 1) -> Decision:
        key, target, cost, decision, sent_at = self._prepare(identity, cost)
        if decision is None:
            try:
                decision = self._stored(key, await self._take(target, cost), sent_at)
            except StoreError as error:
                decision = self._on_error(error, target, cost)
        return self._finish(identity, decision)

    async def _take(self, target: Target, cost: float) -> Decision:
        if type(target) is str:
            return await self.store.take(target, self.config, cost)
        return await self.store.take_all(target, self.configs, cost)  # type: ignore[attr-defined, no-any-return]

    async def peek(self, identity: str) -> Decision:
        target = self._target(identity, self.key_for(identity))
        if self.failure.should_skip_store():
            return self.failure.peek(target, self.configs)
        try:
            if isinstance(target, str):
                return await self.store.peek(target, self.config)
            return await self.store.peek_all(target, self.configs)  # type: ignore[attr-defined, no-any-return]
        except StoreError as error:
            return self._on_error(error, target, None)

    async def reset(self, identity: str) -> None:
        for key in self._forget(identity):
            await self.store.reset(key)
