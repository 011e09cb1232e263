"""What one app holds while it serves: its settings, its store, one limiter per policy.

Django, Flask and FastAPI each keep one ``Limits`` per app and ask it the same things on
every request (which limiter, what cost, which headers), so none of them re-implements
the answers. The sync and async kinds differ only in the limiter and store they hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .bucket import Decision
from .failure import StoreFailureHandler
from .headers import render_headers
from .limiter import AsyncTokenBucketRateLimiter, TokenBucketRateLimiter
from .policies import Policy, Settings, make_async_limiters, make_limiters
from .stores.base import AsyncStore, SyncStore

__all__ = ["AsyncLimits", "Limits", "SyncLimits", "async_limits", "sync_limits"]

S = TypeVar("S")
L = TypeVar("L")


@dataclass(slots=True)
class Limits(Generic[S, L]):
    settings: Settings
    store: S
    #: One limiter per policy; a tiered policy's tiers as ``<policy>:<tier>`` too (its
    #: name alone is its default tier).
    limiters: dict[str, L]
    #: Views' limits bound to these settings (``request_limits.bind``), once each.
    rules: dict[Any, Any] = field(default_factory=dict)

    def policy(self, name: str) -> Policy:
        """The named policy; a ``ConfigError`` naming the configured ones if unknown."""
        return self.settings.policy(name)

    def limiter(self, name: str) -> L:
        self.policy(name)
        return self.limiters[name]

    def cost(self, name: str, cost: float | None) -> float:
        """``cost``, or the policy's own when the caller gave none."""
        return self.policy(name).cost if cost is None else cost

    def headers(self, decision: Decision, policy: str) -> dict[str, str]:
        """The rate-limit headers, in the families the settings switch on."""
        settings = self.settings
        return render_headers(
            decision, policy, legacy=settings.legacy_headers, ietf=settings.ietf_headers
        )


SyncLimits = Limits[SyncStore, TokenBucketRateLimiter]
AsyncLimits = Limits[AsyncStore, AsyncTokenBucketRateLimiter]


def _observe(settings: Settings) -> None:
    """``METRICS = True``: the Prometheus listener joins the event hook (once a process)."""
    if settings.metrics:
        from .metrics import enable_metrics

        enable_metrics()


def sync_limits(
    settings: Settings, store: SyncStore, failure: StoreFailureHandler | None = None
) -> SyncLimits:
    _observe(settings)
    return Limits(settings, store, make_limiters(settings, store, failure))


def async_limits(
    settings: Settings, store: AsyncStore, failure: StoreFailureHandler | None = None
) -> AsyncLimits:
    _observe(settings)
    return Limits(settings, store, make_async_limiters(settings, store, failure))
