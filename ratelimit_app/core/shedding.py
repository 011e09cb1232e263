"""Answer a flood of denials locally, without a store round trip, when the state proves it.

After the store denies a key, we know its tokens ``r`` as of a moment the store chose,
somewhere between ``sent_at`` (our clock before the request left) and ``received_at``
(our clock when the reply came back). Refill is deterministic and every other consumer
can only lower the tokens, so at a later ``now`` the bucket holds at most
``min(C, r + (now - sent_at) * R)``. While that upper bound is below the cost, the store
would deny too, and we say so here.

What the local denial *reports* is another matter: a client told to come back when the
upper bound reaches the cost could come back early by the whole time the request spent
queued on the way to the store. So ``remaining`` and ``retry_after`` come from the lower
bound ``r + (now - received_at) * R`` (the tokens if nobody else takes any), and waiting
the reported ``Retry-After`` is enough, as it is for a denial from the store.

The one thing that raises tokens outside the arithmetic is an action from another
process (reset, grant from the admin or the management command), which this process
cannot see. So a remembered denial is trusted for at most ``max_age`` seconds (default
1 s) after it was learned, then the store is asked again: an admin action reaches every
worker within ``max_age``, and a flood still costs each worker at most one round trip
per key per ``max_age``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .bucket import Decision, decide
from .config import RateLimitConfig

__all__ = ["DenialCache"]

# Margin below the cost: bounds this close to it go to the store, so float rounding in the
# local bound can never turn an admission into a denial.
_MARGIN = 1e-9


class DenialCache:
    """Bounded map of recent denials, by the limiter's key for the identity."""

    def __init__(
        self,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        max_age: float = 1.0,
    ) -> None:
        self.max_keys = max_keys
        self.max_age = max_age
        self.clock = clock
        self._lock = threading.Lock()
        # key -> (sent_at, received_at, remaining, config of the bucket that denied)
        self._denials: dict[str, tuple[float, float, float, RateLimitConfig]] = {}

    def __len__(self) -> int:
        return len(self._denials)

    def check(self, key: str, cost: float, now: float) -> Decision | None:
        """A local denial if the last known state proves one, else None (ask the store)."""
        entry = self._denials.get(key)
        if entry is None:
            return None
        sent_at, received_at, remaining, config = entry
        age = now - sent_at
        rate = config.refill_rate
        fresh = age < self.max_age  # older: another process may have reset or granted since
        if fresh and remaining + max(0.0, age) * rate < cost - _MARGIN * max(1.0, cost):
            lower = remaining + max(0.0, now - received_at) * rate
            return decide(config, cost, False, min(config.capacity, lower))
        self.forget(key)
        return None

    def learn(self, key: str, decision: Decision, sent_at: float) -> None:
        """Remember a denial the store just made (the clock now is when its reply came)."""
        if decision.allowed:
            if key in self._denials:
                self.forget(key)
            return
        received_at = self.clock()
        with self._lock:
            denials = self._denials
            denials.pop(key, None)
            if len(denials) >= self.max_keys:
                del denials[next(iter(denials))]  # oldest denial first
            denials[key] = (sent_at, received_at, decision.remaining, decision.config)

    def forget(self, key: str) -> None:
        with self._lock:
            self._denials.pop(key, None)
