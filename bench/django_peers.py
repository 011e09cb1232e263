"""The Django-based peers, in-process: locmem for memory, django-redis for Redis.

DRF's ``SimpleRateThrottle`` and django-ratelimit's ``is_ratelimited`` both read a
Django cache; ``bootstrap.configure_django`` gives them a ``memory`` alias (locmem,
raised to 100,000 entries like the other memory stores) and a ``redis`` alias on the
bench Redis.
"""

from __future__ import annotations

from typing import Any

from .bootstrap import configure_django
from .contract import Decide, Quota


def drf_peer(backend: str, url: str, quota: Quota) -> Decide:
    configure_django(url)
    from django.core.cache import caches
    from rest_framework.throttling import SimpleRateThrottle

    class BenchThrottle(SimpleRateThrottle):
        """A new instance per decision, as DRF makes one per request."""

        cache = caches["redis" if backend == "redis" else "memory"]
        scope = "bench"
        rate = f"{quota.capacity}/s"

        def parse_rate(self, rate: str | None) -> tuple[int, int]:
            return quota.capacity, quota.period  # DRF's parser reads one unit letter

        def get_cache_key(self, request: Any, view: Any) -> str:
            return self.cache_format % {"scope": self.scope, "ident": request}

    return lambda identity: BenchThrottle().allow_request(identity, None)


def django_ratelimit_peer(backend: str, url: str, quota: Quota) -> Decide:
    configure_django(url)
    from django.conf import settings
    from django_ratelimit.core import is_ratelimited

    alias = "redis" if backend == "redis" else "memory"
    rate = f"{quota.capacity}/{quota.period}s"

    def decide(identity: str) -> bool:
        # The cache is a global setting; rows of both stores live at once in one run.
        if settings.RATELIMIT_USE_CACHE != alias:
            settings.RATELIMIT_USE_CACHE = alias
        limited = is_ratelimited(
            identity, group="bench", key=lambda group, request: request, rate=rate, increment=True
        )
        return not limited

    return decide
