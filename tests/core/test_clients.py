"""The client address: trusted proxies by count or by network, X-Forwarded-For or RFC 7239
``Forwarded``, canonical addresses, and garbage that never raises nor mints buckets."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratelimit_app.core import ConfigError, Proxies, client_ip, parse_settings
from ratelimit_app.core.clients import MAX_HOPS, check_networks

NETS = check_networks(["10.0.0.0/8", "2001:db8:ffff::/48"])
BY_NET = Proxies(trusted_networks=NETS)
FORWARDED = Proxies(trusted_networks=NETS, header="Forwarded")
PEER = "10.0.0.9"  # a trusted proxy


@pytest.mark.parametrize(
    ("peer", "xff", "trusted", "expected"),
    [
        (PEER, None, 0, PEER),
        (PEER, "6.6.6.6", 0, PEER),  # a spoof is ignored by default
        (PEER, "1.2.3.4", 1, "1.2.3.4"),  # one proxy: its client
        (PEER, "6.6.6.6, 1.2.3.4", 1, "1.2.3.4"),  # the client-made entry is skipped
        (PEER, "6.6.6.6, 1.2.3.4, 10.0.0.8", 2, "1.2.3.4"),
        (PEER, "1.2.3.4", 3, PEER),  # fewer hops than proxies: not through them all
        (PEER, ["6.6.6.6", "1.2.3.4"], 1, "1.2.3.4"),  # repeated lines, in order
        ("::ffff:1.2.3.4", None, 0, "1.2.3.4"),
        ("", None, 0, "unknown"),
        ("testclient", None, 0, "testclient"),
    ],
)
def test_by_count(peer: str, xff: str | list[str] | None, trusted: int, expected: str) -> None:
    assert client_ip(peer, xff, trusted) == expected


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        (PEER, "203.0.113.5", "203.0.113.5"),
        (PEER, "6.6.6.6, 203.0.113.5", "203.0.113.5"),  # spoofed left entry
        (PEER, "6.6.6.6, 203.0.113.5, 10.1.2.3, 10.0.0.2", "203.0.113.5"),  # trusted hops
        (PEER, ["6.6.6.6", "203.0.113.5"], "203.0.113.5"),  # a client-sent line first
        (PEER, "10.1.2.3, 10.0.0.2", "10.1.2.3"),  # began inside: the leftmost hop
        ("203.0.113.77", "1.1.1.1", "203.0.113.77"),  # untrusted peer: header ignored
        (PEER, "203.0.113.5:40001", "203.0.113.5"),
        (PEER, "[2001:db8::5]:443", "2001:db8::"),
        (PEER, "2001:db8:0:0:ffff::6", "2001:db8::"),  # same /64
        (PEER, "2001:DB8::1%eth0", "2001:db8::"),  # zone id dropped
        (PEER, "::ffff:203.0.113.8", "203.0.113.8"),
        (PEER, "[::ffff:203.0.113.8]:80", "203.0.113.8"),
        ("[2001:db8:ffff::1]:5000", "203.0.113.5", "203.0.113.5"),  # a v6 proxy
        ("::ffff:10.0.0.9", "203.0.113.5", "203.0.113.5"),  # a v4-mapped proxy
        (PEER, "unknown", PEER),
        (PEER, "203.0.113.5, 10.0.0.2:x", PEER),  # a bad port on a trusted hop
        (PEER, "203.0.113.5, [10.0.0.2", PEER),
        (PEER, "", PEER),
        (PEER, ",,,", PEER),
        (PEER, "1.1.1.1, " * 1000 + "203.0.113.9", "203.0.113.9"),
        (PEER, "10.0.0.1, " * 1000 + "10.0.0.2", PEER),  # past MAX_HOPS: garbage
        (PEER, "x" * 10_000, PEER),
    ],
)
def test_by_network(peer: str, xff: str | list[str], expected: str) -> None:
    assert BY_NET.client(peer, xff) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("for=203.0.113.5", "203.0.113.5"),
        ("for=6.6.6.6, for=203.0.113.5;proto=https;by=10.0.0.9", "203.0.113.5"),
        ('For="[2001:db8:cafe::17]:4711"', "2001:db8:cafe::"),
        ('for="203.0.113.5:8080", for=10.0.0.3', "203.0.113.5"),
        ("proto=https; for=203.0.113.5", "203.0.113.5"),
        ('for="\\[2001:db8::1\\]"', "2001:db8::"),  # quoted-pair escapes
        ('for=6.6.6.6, for="[2001:db8::9],x"', PEER),  # a comma inside quotes stays inside
        ("for=unknown", PEER),
        ("for=_hidden, for=10.0.0.3", PEER),  # obfuscated: no address to charge
        ("for=203.0.113.5, proto=https", PEER),  # a hop without for=
        ('for="unterminated', PEER),
        ('for="203.0.113.5', PEER),  # a broken quote is garbage, not an address
        ("for=[2001:db8::1]:_abc", "2001:db8::"),  # obfuscated port
    ],
)
def test_forwarded(header: str, expected: str) -> None:
    assert FORWARDED.client(PEER, header) == expected


def test_forwarded_ignores_x_forwarded_for_and_the_reverse() -> None:
    assert FORWARDED.header_name == "forwarded" and FORWARDED.environ_key == "HTTP_FORWARDED"
    assert BY_NET.client(PEER, "for=203.0.113.5") == PEER


def test_six_addresses_of_one_64_share_an_identity_and_128_turns_it_off() -> None:
    hosts = [f"2001:db8:1:2::{n:x}" for n in (1, 2, 0xFFFF, 0xABCD, 0x1234, 0x9)]
    assert {client_ip(host) for host in hosts} == {"2001:db8:1:2::"}
    exact = Proxies(ipv6_prefix=128)
    assert len({exact.client(host) for host in hosts}) == 6
    assert Proxies(ipv6_prefix=48).client("2001:db8:1:2::1") == "2001:db8:1::"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"TRUSTED_PROXY_COUNT": 10**9}, "TRUSTED_PROXY_COUNT.*at most 32"),
        ({"TRUSTED_PROXIES": "10.0.0.0/8"}, r"TRUSTED_PROXIES.*must be a list"),
        ({"TRUSTED_PROXIES": ["10.0.0.0/33"]}, r"TRUSTED_PROXIES.*\[0\] '10.0.0.0/33'"),
        ({"TRUSTED_PROXIES": [None]}, r"TRUSTED_PROXIES.*\[0\] None"),
        ({"TRUSTED_PROXIES": ["0.0.0.0/0"]}, "trusts every address"),
        ({"TRUSTED_PROXIES": ["10.0.0.0/8"], "TRUSTED_PROXY_COUNT": 2}, "not both"),
        ({"PROXY_HEADER": "X-Real-IP"}, "PROXY_HEADER"),
        ({"IPV6_PREFIX": 129}, "IPV6_PREFIX"),
        ({"IPV6_PREFIX": True}, "IPV6_PREFIX"),
    ],
)
def test_bad_proxy_settings_name_the_setting(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings(raw)


def test_proxy_settings_build_one_rule() -> None:
    settings = parse_settings(
        {"TRUSTED_PROXIES": ["10.0.0.0/8", "::1"], "PROXY_HEADER": "forwarded", "IPV6_PREFIX": 56}
    )
    rule = settings.proxies
    assert rule.header == "Forwarded" and rule.ipv6_prefix == 56
    assert [str(n) for n in rule.trusted_networks] == ["10.0.0.0/8", "::1/128"]
    assert parse_settings({}).proxies == Proxies()
    assert MAX_HOPS == 32


_junk = st.one_of(
    st.text(max_size=300),
    st.lists(
        st.one_of(
            st.sampled_from(["10.0.0.1", "[::1]:80", "unknown", "_x", '"', "[", "]", ":", "%"]),
            st.text(alphabet="0123456789abcdef:.[]%\"';=, _-", max_size=40),
            st.ip_addresses().map(str),
        ),
        max_size=50,
    ).map(", ".join),
)


@settings(max_examples=400, deadline=None)
@given(values=st.one_of(_junk, st.lists(_junk, max_size=4)), header=st.sampled_from(["x", "f"]))
def test_any_header_value_gives_the_peer_or_one_address_from_it(
    values: str | list[str], header: str
) -> None:
    """Never raises; the answer is the peer or a canonical address (so a key segment no
    longer than an IPv6 address) found in the header, never the header's own text."""
    rule = BY_NET if header == "x" else FORWARDED
    found = rule.client("10.0.0.9", values)
    if found != "10.0.0.9":
        address = ipaddress.ip_address(found)
        assert str(address) == found
        assert isinstance(address, ipaddress.IPv4Address) or found.endswith("::")
    assert Proxies(trusted_count=1, header=rule.header).client("10.0.0.9", values)
