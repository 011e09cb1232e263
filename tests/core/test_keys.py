"""Keys cannot be steered by client input; X-Forwarded-For only through trusted proxies."""

from __future__ import annotations

import pytest

from ratelimit_app.core import ConfigError, build_key, client_ip, safe_identity


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


@pytest.mark.parametrize(
    ("peer", "xff", "trusted", "expected"),
    [
        ("10.0.0.9", None, 0, "10.0.0.9"),
        ("10.0.0.9", "6.6.6.6", 0, "10.0.0.9"),  # spoof ignored by default
        ("10.0.0.9", "1.2.3.4", 1, "1.2.3.4"),  # one proxy: its client
        ("10.0.0.9", "6.6.6.6, 1.2.3.4", 1, "1.2.3.4"),  # client-made entry skipped
        ("10.0.0.9", "6.6.6.6, 1.2.3.4, 10.0.0.8", 2, "1.2.3.4"),
        ("10.0.0.9", "1.2.3.4", 3, "1.2.3.4"),  # fewer hops than proxies
        ("::ffff:1.2.3.4", None, 0, "::ffff:102:304"),
        ("", None, 0, "unknown"),
    ],
)
def test_client_ip(peer: str, xff: str | None, trusted: int, expected: str) -> None:
    assert client_ip(peer, xff, trusted) == expected
