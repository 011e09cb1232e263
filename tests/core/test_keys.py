"""Keys cannot be steered by client input."""

from __future__ import annotations

import pytest

from ratelimit_app.core import ConfigError, build_key, safe_identity


@pytest.mark.parametrize("plain", ["user:42", "10.0.0.1", "2001:db8::1", "a.b-c_d@e"])
def test_plain_identities_stay_readable(plain: str) -> None:
    assert build_key("rl", "ping", plain) == f"rl:ping:{plain}"


@pytest.mark.parametrize("odd", ["", "a b", "a\r\nSET x", "x" * 65, "ü", "*", "#abc"])
def test_odd_identities_are_hashed(odd: str) -> None:
    safe = safe_identity(odd)
    assert safe.startswith("#") and len(safe) == 41 and safe != odd
    assert safe_identity(odd) == safe  # stable


def test_distinct_identities_hash_apart() -> None:
    assert safe_identity("x" * 65) != safe_identity("x" * 66)


def test_identity_must_be_text() -> None:
    with pytest.raises(ConfigError, match="identity"):
        safe_identity(b"bytes")  # type: ignore[arg-type]
