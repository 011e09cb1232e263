"""What a limiter does when its store fails (``on_store_error``).

``fallback`` decides from a local memory store, ``allow`` fails open, ``deny`` fails
closed, ``raise`` lets ``StoreError`` through. Outside ``raise``, a failed store is left
alone for ``retry_interval`` seconds, so an outage costs one timeout per interval instead
of one per request, and the incident is logged once when it starts and once when it ends.
One ``StoreFailureHandler`` may be shared by every limiter over the same store.

The back-off is kept per *scope*: the part of the store a failed call went to. A store
that can tell (a Redis Cluster names the master owning the key's slot) gives each of its
nodes its own back-off, so one dead master does not send the keys of the live ones to the
failure policy; any other store is one scope (``None``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .bucket import Decision, binding, decide
from .config import ConfigError, Problem, check_number
from .stores.base import Configs, Keys
from .stores.memory import MemoryStore

__all__ = ["FAILURE_MODES", "MAX_RETRY_INTERVAL", "StoreFailureHandler", "check_retry_interval"]

FAILURE_MODES = ("fallback", "allow", "deny", "raise")
# A longer back-off gains nothing (a retry costs one timeout) and turns one blip into a
# long stretch of the failure policy: under "allow", hours of no limit at all.
MAX_RETRY_INTERVAL = 300.0
LOG_QUIET = 30.0  # seconds
logger = logging.getLogger("ratelimit_app")


def check_retry_interval(value: object) -> float:
    """Seconds a failed store is left alone: from 0 to ``MAX_RETRY_INTERVAL``."""
    return check_number(
        value, "retry_interval (seconds)", inclusive=True, maximum=MAX_RETRY_INTERVAL,
        kind=Problem.RETRY_INTERVAL,
    )  # fmt: skip


class StoreFailureHandler:
    def __init__(
        self,
        mode: str = "fallback",
        *,
        retry_interval: float = 1.0,
        fallback_store: MemoryStore | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in FAILURE_MODES:
            raise ConfigError(
                f"on_store_error must be one of {', '.join(FAILURE_MODES)}; got {mode!r}",
                kind=Problem.FAILURE_MODE,
            )
        self.mode = mode
        self.retry_interval = check_retry_interval(retry_interval)
        self.fallback_store = fallback_store or MemoryStore()
        self.clock = clock
        self._lock = threading.Lock()
        #: The end of each failed scope's back-off (``None``: the whole store).
        self._down: dict[str | None, float] = {}
        #: None while every scope is healthy, else the latest end of a back-off: one
        #: attribute read tells the per-request path whether to look further.
        self.down_until: float | None = None
        # Incidents that start within LOG_QUIET seconds of a logged one are not logged
        # again (a flapping store, or one cluster node down while the others answer).
        self._logged_at: float | None = None
        self._incident_logged = False
        self._unlogged = 0

    @property
    def store_is_down(self) -> bool:
        return self.down_until is not None

    def down_scopes(self) -> list[str | None]:
        """The scopes that failed and have not answered since."""
        with self._lock:
            return list(self._down)

    def should_skip_store(self, scope: str | None = None) -> bool:
        """True while ``scope`` (or the whole store) is in its back-off window."""
        if self.down_until is None or self.mode == "raise":
            return False
        down = self._down
        until = down.get(None, 0.0)
        if scope is not None:
            until = max(until, down.get(scope, 0.0))
        return self.clock() < until

    def failed(self, error: BaseException, scope: str | None = None) -> None:
        """A call to ``scope`` failed: back it off, and log if an incident starts."""
        with self._lock:
            now = self.clock()
            first = self.down_until is None
            self._down[scope] = now + self.retry_interval
            self.down_until = max(self._down.values())
            if not first:
                return
            if self._logged_at is not None and now - self._logged_at < LOG_QUIET:
                self._unlogged += 1
                self._incident_logged = False
                return
            self._logged_at, self._incident_logged = now, True
            unlogged, self._unlogged = self._unlogged, 0
        logger.warning(
            "rate-limit store failed (%s%s); on_store_error=%s until it answers again%s",
            "" if scope is None else f"{scope}: ", error, self.mode,
            f" ({unlogged} more short outages since the last report)" if unlogged else "",
        )  # fmt: skip

    def succeeded(self, scope: str | None = None) -> bool:
        """A call to ``scope`` answered: its back-off (and a whole-store one) ends; the
        incident ends when no scope is left down. True for the one caller that ended it."""
        if self.down_until is None:
            return False
        with self._lock:
            was_down = self.down_until is not None
            self._down.pop(scope, None)
            self._down.pop(None, None)
            self.down_until = max(self._down.values(), default=None)
            if self.down_until is not None:
                return False
            logged, self._incident_logged = self._incident_logged, False
        if was_down and logged:
            logger.warning("rate-limit store answers again; back to normal decisions")
        return was_down

    def decide(self, keys: Keys, configs: Configs, cost: float) -> Decision:
        """The decision to give while the store is unavailable."""
        if self.mode == "fallback":
            return self.fallback_store.take_all(keys, configs, cost)
        allowed = self.mode == "allow"
        # allow reports full buckets; deny reports empty ones, so retry_after is the time a
        # refill of the cost takes
        return binding(
            [
                decide(config, cost, allowed, config.capacity if allowed else 0.0)
                for config in configs
            ]
        )

    def peek(self, keys: Keys, configs: Configs) -> Decision:
        if self.mode != "fallback":
            return self.decide(keys, configs, 0.0)
        return self.fallback_store.peek_all(keys, configs)
