"""A ``redis.asyncio`` client that talks to the same server as a sync one.

Django builds its Redis clients (django-redis, or Django's own ``RedisCache``) from a
``CACHES`` entry; async views need an async client to the same place with the same
credentials, TLS and pool size, without re-reading the entry in a second way. The sync
pool already holds all of that, so the twin is built from it: only settings a user can
give are copied (the pool's internal bookkeeping is not), and only those the async
connection class accepts.
"""

from __future__ import annotations

import inspect
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.connection as aconnection
import redis.connection as sconnection

__all__ = ["POOL_WAIT", "async_client_for"]

# Seconds a decision waits for a free connection when the sync pool does not say
# (the same default as the Flask/FastAPI POOL_TIMEOUT).
POOL_WAIT = 5.0

# Sync connection class -> its asyncio twin.
_TWINS: dict[type[Any], type[Any]] = {
    sconnection.Connection: aconnection.Connection,
    sconnection.SSLConnection: aconnection.SSLConnection,
    sconnection.UnixDomainSocketConnection: aconnection.UnixDomainSocketConnection,
}
# What a user configures; everything else in a pool's kwargs is redis-py's own state.
_USER_SETTINGS = frozenset(
    {
        "host", "port", "path", "db", "username", "password", "credential_provider",
        "socket_timeout", "socket_connect_timeout", "socket_keepalive",
        "socket_keepalive_options", "client_name", "health_check_interval", "protocol",
        "encoding", "encoding_errors", "decode_responses", "lib_name", "lib_version",
        "ssl_keyfile", "ssl_certfile", "ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_data",
        "ssl_check_hostname", "ssl_min_version", "ssl_ciphers", "ssl_password",
    }
)  # fmt: skip


def _accepted(connection_class: type[Any]) -> frozenset[str]:
    names: set[str] = set()
    for klass in connection_class.__mro__:
        if "__init__" in vars(klass):
            names.update(inspect.signature(vars(klass)["__init__"]).parameters)
    return frozenset(names & _USER_SETTINGS)


_ACCEPTED = {twin: _accepted(twin) for twin in _TWINS.values()}


def async_client_for(client: Any) -> redis.asyncio.Redis | None:
    """An async client over a pool like ``client``'s (same server, credentials, TLS and
    size); None when the pool is of a kind this cannot copy (Sentinel, a custom class),
    so the caller keeps using the sync client.

    The twin's pool always *blocks* when every connection is busy: a threaded server
    never has more requests in flight than threads, but an event loop has as many as
    clients send, and a non-blocking pool would fail the excess (each failure a decision
    for the failure policy) instead of making it wait its turn.
    """
    pool = getattr(client, "connection_pool", None)
    if type(pool) not in (redis.ConnectionPool, redis.BlockingConnectionPool):
        return None
    assert pool is not None
    twin = _TWINS.get(pool.connection_class)
    if twin is None:
        return None
    accepted = _ACCEPTED[twin]
    kwargs = {k: v for k, v in pool.connection_kwargs.items() if k in accepted}
    wait = pool.timeout if isinstance(pool, redis.BlockingConnectionPool) else POOL_WAIT
    blocking = redis.asyncio.BlockingConnectionPool(
        connection_class=twin, max_connections=pool.max_connections, timeout=wait, **kwargs
    )
    return redis.asyncio.Redis(connection_pool=blocking)
