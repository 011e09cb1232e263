"""Keys cannot be steered by client input."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

import pytest

from ratelimit_app.core import ConfigError, build_key, client_ip, safe_identity
from ratelimit_app.core.clients import _grouped, _parse
from ratelimit_app.core.keys import _cached_keys, build_keys


@pytest.mark.parametrize("plain", ["user:42", "10.0.0.1", "2001:db8::1", "a.b-c_d@e"])
def test_plain_identities_stay_readable(plain: str) -> None:
    assert build_key("rl", "ping", plain) == f"rl:ping:{plain}"


# "user:1\n": a trailing newline must not pass as plain ("$" would match before it)
@pytest.mark.parametrize(
    "odd", ["", "a b", "a\r\nSET x", "x" * 65, "ü", "*", "#abc", "user:1\n", "\nuser:1"]
)
def test_odd_identities_are_hashed(odd: str) -> None:
    safe = safe_identity(odd)
    assert safe.startswith("#") and len(safe) == 41 and safe != odd
    assert safe_identity(odd) == safe  # stable


def test_distinct_identities_hash_apart() -> None:
    assert safe_identity("x" * 65) != safe_identity("x" * 66)


def test_identity_must_be_text() -> None:
    with pytest.raises(ConfigError, match="identity"):
        safe_identity(b"bytes")  # type: ignore[arg-type]


KEY_CACHE_BOUND = 10 * 2**20  # bytes: 16,384 entries of at most 64 ASCII characters


def traced_growth(calls: Callable[[], None]) -> int:
    """Bytes still allocated after ``calls`` (the caches it filled), from a clean start."""
    _cached_keys.cache_clear()
    _parse.cache_clear()
    _grouped.cache_clear()
    tracemalloc.start()
    try:
        calls()
        return tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


IDENTITIES = [
    lambda i: f"{i:08d}" + "x" * 8192,  # 8 kB: hashed, never cached
    lambda i: f"{i:08d}" + "\U0001f600" * 248,  # 1 kB in 4-byte characters: hashed too
    lambda i: f"user:{i:08d}" + "x" * 51,  # 64 plain characters: cached, the costliest
]


def test_100k_distinct_identities_leave_the_key_cache_under_10_mib() -> None:
    """Whatever clients send, the identity-to-key cache is bounded by bytes, not only by
    count: only identities that stay plain (ASCII, at most 64 characters) are cached."""

    def calls() -> None:
        for i in range(100_000):
            identity = IDENTITIES[i % 3](i)
            build_keys("rl", "default", identity, 2 if i % 2 else 1)  # composite keys too

    grown = traced_growth(calls)
    print(f"\nkey cache after 100,000 identities: {grown / 2**20:.2f} MiB")
    assert grown < KEY_CACHE_BOUND
    assert _cached_keys.cache_info().currsize == 16384


def test_forwarded_text_too_long_for_an_address_is_not_cached() -> None:
    def calls() -> None:
        for i in range(20_000):
            client_ip("10.0.0.1", f"{i:08d}" + "x" * 8192, 1)

    assert traced_growth(calls) < 2**20
