"""Process-wide setup for the benchmarks, in one place and done once per process.

Django can be configured only once per process, and two peers need it (DRF's
``SimpleRateThrottle`` and django-ratelimit both read a Django cache). Each asks here
rather than configuring Django itself; the processes ``bench.peers`` spawns for its
exactness race ask again, once each, in their own interpreter.
"""

from __future__ import annotations

from .contract import MAX_KEYS


def configure_django(redis_url: str) -> None:
    """Caches ``memory`` (locmem, raised to ``MAX_KEYS`` entries like the other memory
    stores) and ``redis`` (django-redis on ``redis_url``); later calls only check."""
    from django.conf import settings

    if settings.configured:
        configured = settings.CACHES.get("redis", {}).get("LOCATION")
        if configured != redis_url:
            raise RuntimeError(f"Django is already configured for Redis at {configured}")
        return
    locmem = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    settings.configure(
        INSTALLED_APPS=[],
        USE_TZ=True,
        CACHES={
            "default": {**locmem, "LOCATION": "default"},
            "memory": {**locmem, "LOCATION": "bench", "OPTIONS": {"MAX_ENTRIES": MAX_KEYS}},
            "redis": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": redis_url},
        },
        REST_FRAMEWORK={"DEFAULT_THROTTLE_RATES": {}},
        RATELIMIT_USE_CACHE="memory",
    )
    import django

    django.setup()
