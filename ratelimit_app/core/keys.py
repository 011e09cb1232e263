"""Cache keys and client identities.

Client input ends up in keys, so anything that is long or outside a small safe alphabet is
replaced by its digest: no identity can add a key segment, break a cache backend's key
rules (memcached rejects spaces and control characters) or blow up key size.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from functools import lru_cache

from .config import ConfigError

__all__ = [
    "MAX_PLAIN_IDENTITY",
    "build_key",
    "client_ip",
    "composite_keys",
    "hash_identity",
    "log_identity",
    "safe_identity",
]

MAX_PLAIN_IDENTITY = 64
_SAFE = re.compile(r"^[A-Za-z0-9._:@-]+$")
_PREFIX = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# '#' is outside the safe alphabet, so a digest can never equal a plain identity.
_DIGEST_MARK = "#"


def hash_identity(identity: str) -> str:
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()
    return _DIGEST_MARK + digest[:40]


def safe_identity(identity: str) -> str:
    """The identity itself when short and plain, else its digest."""
    if type(identity) is not str:
        raise ConfigError(f"identity must be a str, got {type(identity).__name__}")
    if 0 < len(identity) <= MAX_PLAIN_IDENTITY and _SAFE.match(identity):
        return identity
    return hash_identity(identity)


def log_identity(identity: str) -> str:
    """A short digest to log above DEBUG instead of the raw client identity."""
    return hash_identity(identity)[1:13]


def check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        raise ConfigError(
            f"key prefix {prefix!r} must be 1-64 characters of letters, digits, '_', '.', '-'"
        )
    return prefix


def build_key(prefix: str, policy: str, identity: str) -> str:
    """``<prefix>:<policy>:<identity-or-digest>``; prefix and policy are validated at config."""
    try:
        return _cached_key(prefix, policy, identity)
    except TypeError:  # unhashable identity: let safe_identity name the problem
        return f"{prefix}:{policy}:{safe_identity(identity)}"


@lru_cache(maxsize=16384)
def _cached_key(prefix: str, policy: str, identity: str) -> str:
    """Hot clients come back on every request; the cache is bounded."""
    return f"{prefix}:{policy}:{safe_identity(identity)}"


def composite_keys(prefix: str, policy: str, identity: str, count: int) -> tuple[str, ...]:
    """One key per bucket of a composite policy: ``<prefix>:<policy>:{<identity>}:<i>``.

    The braces are a Redis Cluster hash tag, so every bucket of one client's composite
    policy lands in one slot and one script can update them atomically. No identity
    can contain a brace (they are outside the safe alphabet), so none can move the tag.
    """
    tag = safe_identity(identity)
    return tuple(f"{prefix}:{policy}:{{{tag}}}:{i}" for i in range(count))


def client_ip(
    remote_addr: str | None,
    forwarded_for: str | None,
    trusted_proxies: int = 0,
) -> str:
    """The client address, believing ``X-Forwarded-For`` only through trusted proxies.

    With ``trusted_proxies`` = n, the n-th address from the right of the combined chain
    (header addresses followed by the peer) is the client: each trusted proxy appended
    the address it saw, and anything further left could be the client's own invention.
    """
    peer = (remote_addr or "").strip() or "unknown"
    if trusted_proxies <= 0 or not forwarded_for:
        return _normalise_ip(peer)
    chain = [part.strip() for part in forwarded_for.split(",") if part.strip()]
    chain.append(peer)
    if len(chain) <= trusted_proxies:
        return _normalise_ip(chain[0])
    return _normalise_ip(chain[-1 - trusted_proxies])


@lru_cache(maxsize=4096)
def _normalise_ip(value: str) -> str:
    """Canonical text of an address (``::ffff:1.2.3.4`` and ``::FFFF:102:304`` are one
    bucket); cached because parsing costs more than the rest of a decision."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value
