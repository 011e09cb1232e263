"""Which store keeps the buckets of a Django cache alias, with the atomicity each
backend can give.

* ``LocMemCache``: a local-memory cache is private to one process anyway, so its buckets
  live in a bounded core ``MemoryStore`` (one per cache LOCATION and process) and each
  decision is one critical section under that store's lock, on the core arithmetic.
* ``django_redis.cache.RedisCache`` and Django's ``django.core.cache.backends.redis.
  RedisCache``: the core ``RedisStore`` runs its Lua script on the backend's raw
  redis-py client, so every decision is one atomic EVALSHA shared by all processes.
  The core key (``prefix:policy:identity``) is used as is on the raw client: Django's
  ``KEY_PREFIX``/``VERSION``/``KEY_FUNCTION`` do not apply to buckets, so the admin and
  ``redis-cli`` see the same names.
* Any other backend: best effort, a get then a set through the cache API under a lock
  that only serialises this process (``cache_api_store.py``). System check
  ``ratelimit.W001`` says so.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache import BaseCache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

from .cache_api_store import CacheAPIStore, Clock, translated
from .core.stores.memory import MemoryStore
from .core.stores.redis import RedisStore

__all__ = ["backend_kind", "store_for_cache"]

_LOCMEM: dict[int, MemoryStore] = {}
_LOCMEM_LOCK = threading.Lock()


def backend_kind(cache: BaseCache) -> str:
    """``locmem``, ``django-redis``, ``redis-cache`` (Django's own) or ``other``."""
    if isinstance(cache, LocMemCache):
        return "locmem"
    if isinstance(cache, RedisCache):
        return "redis-cache"
    try:
        from django_redis.cache import RedisCache as DjangoRedisCache
    except ImportError:  # pragma: no cover - django-redis is optional
        return "other"
    return "django-redis" if isinstance(cache, DjangoRedisCache) else "other"


def _locmem_buckets(cache: LocMemCache, clock: Clock | None) -> MemoryStore:
    """One bucket map per LocMemCache location and process, as Django shares one dict
    per location: every store over the same location sees the same buckets."""
    if clock is not None:
        return MemoryStore(clock=clock)
    shared = id(cache._cache)  # type: ignore[attr-defined]  # kept alive by locmem._caches
    with _LOCMEM_LOCK:
        return _LOCMEM.setdefault(shared, MemoryStore())


def _redis_client(alias: str, cache: BaseCache, kind: str) -> Any:
    if kind == "django-redis":
        from django_redis import get_redis_connection

        return get_redis_connection(alias, write=True)
    # Django's RedisCache: the first server is the one written to.
    return cache._cache.get_client(None, write=True)  # type: ignore[attr-defined]


def store_for_cache(alias: str, clock: Clock | None) -> Any:
    """The store doing the work for the cache ``alias``: a ``MemoryStore``, a
    ``RedisStore`` on the backend's raw client, or a ``CacheAPIStore``."""
    cache = caches[alias]
    kind = backend_kind(cache)
    if kind == "locmem":
        return _locmem_buckets(cache, clock)  # type: ignore[arg-type]
    if kind == "other":
        return CacheAPIStore(alias, clock)
    with translated(f"cache {alias!r}"):
        client = _redis_client(alias, cache, kind)
    return RedisStore(client, clock=clock)
