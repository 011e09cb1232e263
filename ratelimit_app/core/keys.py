"""Cache keys and the identities in them.

Client input ends up in keys, so anything that is long or outside a small safe alphabet is
replaced by its digest: no identity can add a key segment, break a cache backend's key
rules (memcached rejects spaces and control characters) or blow up key size.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from functools import lru_cache

from .config import ConfigError, Problem, check_plain_name

__all__ = [
    "MAX_PLAIN_IDENTITY",
    "build_key",
    "build_keys",
    "check_prefix",
    "format_keys",
    "hash_identity",
    "log_identity",
    "parse_key",
    "safe_identity",
]

MAX_PLAIN_IDENTITY = 64
_SAFE = re.compile(r"[A-Za-z0-9._:@-]+")
# A composite policy's bucket keys end in ``{<identity>}:<index>`` (see format_keys).
_TAGGED = re.compile(r"\{(.+)\}:(\d+)")
# Only identities that can stay plain (ASCII, at most MAX_PLAIN_IDENTITY characters) are
# cached; the rest are hashed on every call. The key cache then holds at most 16,384
# entries of at most 64 bytes of identity each: under 10 MiB whatever clients send
# (tests/core/test_keys.py measures it), where caching any identity of up to 256
# characters let 4-byte characters fill it with more than 22 MiB.
_KEY_CACHE_SIZE = 16384
# '#' is outside the safe alphabet, so a digest can never equal a plain identity.
_DIGEST_MARK = "#"


def hash_identity(identity: str) -> str:
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()
    return _DIGEST_MARK + digest[:40]


def safe_identity(identity: str) -> str:
    """The identity itself when short and plain, else its digest."""
    if type(identity) is not str:
        raise ConfigError(f"identity must be a str, got {type(identity).__name__}")
    if 0 < len(identity) <= MAX_PLAIN_IDENTITY and _SAFE.fullmatch(identity):
        return identity
    return hash_identity(identity)


def log_identity(identity: str) -> str:
    """The short digest logs and events carry instead of the raw client identity
    (cached, as keys are, for identities that can stay plain: a flood repeats the same
    few, and the cache stays bounded by bytes)."""
    if len(identity) <= MAX_PLAIN_IDENTITY and identity.isascii():
        return _cached_digest(identity)
    return hash_identity(identity)[1:13]


@lru_cache(maxsize=_KEY_CACHE_SIZE)
def _cached_digest(identity: str) -> str:
    return hash_identity(identity)[1:13]


def check_prefix(prefix: str) -> str:
    return check_plain_name(prefix, "key prefix", Problem.KEY_PREFIX)


def build_key(prefix: str, policy: str, identity: str) -> str:
    """``<prefix>:<policy>:<identity-or-digest>``; prefix and policy are validated at config."""
    return build_keys(prefix, policy, identity, 1)[0]


def build_keys(prefix: str, policy: str, identity: str, count: int) -> tuple[str, ...]:
    """The keys of an identity's buckets: one key, or ``count`` for a composite policy."""
    if type(identity) is str and len(identity) <= MAX_PLAIN_IDENTITY and identity.isascii():
        return _cached_keys(prefix, policy, identity, count)
    return _keys(prefix, policy, identity, count)


def _keys(prefix: str, policy: str, identity: str, count: int) -> tuple[str, ...]:
    return format_keys(prefix, policy, safe_identity(identity), count)


def format_keys(prefix: str, policy: str, safe: str, count: int) -> tuple[str, ...]:
    """The keys for an identity already in its stored form (``safe_identity``'s result,
    as ``parse_key`` reads it back from a key).

    A composite policy has one key per bucket, ``<prefix>:<policy>:{<identity>}:<i>``:
    the braces are a Redis Cluster hash tag, so every bucket of one client's composite
    policy lands in one slot and one script can update them atomically. No identity can
    contain a brace (they are outside the safe alphabet), so none can move the tag.
    """
    if count == 1:
        return (f"{prefix}:{policy}:{safe}",)
    return tuple(f"{prefix}:{policy}:{{{safe}}}:{i}" for i in range(count))


# Hot clients come back on every request; bounded by count here and by size above.
_cached_keys = lru_cache(maxsize=_KEY_CACHE_SIZE)(_keys)


def parse_key(
    key: str, prefix: str, bucket_counts: Mapping[str, int]
) -> tuple[str, str, int] | None:
    """``(policy, identity, bucket index)`` of one of our bucket keys, else None.

    ``bucket_counts`` maps each configured policy to its number of buckets, and each tier
    of a tiered policy as ``<policy>:<tier>`` (whose keys are
    ``<prefix>:<policy>:<tier>:<identity>``; the name returned is then
    ``<policy>:<tier>``). The identity is as stored (a digest for one that was hashed).
    """
    head, sep, rest = key.partition(":")
    policy, sep2, identity = rest.partition(":")
    tier, sep3, tiered = identity.partition(":")
    if sep3 and f"{policy}:{tier}" in bucket_counts:
        policy, identity = f"{policy}:{tier}", tiered
    count = bucket_counts.get(policy)
    if head != prefix or not (sep and sep2 and identity) or count is None:
        return None
    if count == 1:
        return policy, identity, 0
    tagged = _TAGGED.fullmatch(identity)
    if tagged is None or int(tagged[2]) >= count:
        return None
    return policy, tagged[1], int(tagged[2])
