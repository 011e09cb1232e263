"""Who a request comes from: the peer's address, or the one a trusted proxy reported.

Django, Flask and FastAPI all call ``Proxies.client``, so every integration charges a
request to the same bucket. Anything a client writes itself is untrusted: a proxy header
is read only when proxies are configured, from the right (the end trusted hops append
to), and every value is reduced to a canonical address before it becomes a key, so that
ports, brackets, zone ids, IPv4-mapped forms and the 2^64 addresses of one IPv6 host
cannot turn one client into many buckets. Nothing a header holds can raise here: what
cannot be read is answered with the peer's address.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .config import ConfigError, Problem, check_count

__all__ = [
    "FORWARDED",
    "MAX_HOPS",
    "PROXY_HEADERS",
    "X_FORWARDED_FOR",
    "Proxies",
    "address_in",
    "check_ipv6_prefix",
    "check_networks",
    "check_proxy_count",
    "check_proxy_header",
    "client_ip",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
X_FORWARDED_FOR = "X-Forwarded-For"
FORWARDED = "Forwarded"  # RFC 7239
PROXY_HEADERS = (X_FORWARDED_FOR, FORWARDED)
# Hops read from the right of a header. A deeper chain of trusted proxies is not a real
# deployment, so past this the chain is garbage and the peer is the client; reading only
# this many also bounds the work a 10 kB header can cause.
MAX_HOPS = 32
_MAX_TOKEN = 100  # no address with port and brackets is longer
_PORT = re.compile(r"[0-9]{1,5}|_[A-Za-z0-9._-]+")  # a number, or RFC 7239's obfuscated port
# RFC 7239 pieces: a quoted string (with backslash escapes), a run of plain text, a comma.
_FORWARDED_PIECE = re.compile(r'"(?:[^"\\]|\\.)*"?|[^",]+|,')
_FOR_PARAM = re.compile(r'(?:^|;)\s*for\s*=\s*("(?:[^"\\]|\\.)*"?|[^;]*)', re.IGNORECASE)
_UNESCAPE = re.compile(r"\\(.)")


@dataclass(frozen=True, slots=True)
class Proxies:
    """Which proxies may report the client's address, in which header.

    ``trusted_count``: that many proxies, each appending to the header, stand in front of
    the app. ``trusted_networks``: any hop inside these networks is a proxy; the walk from
    the right stops at the first address outside them. At most one of the two is set.
    ``ipv6_prefix``: IPv6 clients are grouped by this prefix (128: one bucket per address).
    """

    trusted_count: int = 0
    trusted_networks: tuple[IPNetwork, ...] = ()
    header: str = X_FORWARDED_FOR
    ipv6_prefix: int = 64

    @property
    def reads_header(self) -> bool:
        return bool(self.trusted_count or self.trusted_networks)

    @property
    def environ_key(self) -> str:
        """The header's WSGI / Django ``META`` key (repeated lines arrive comma-joined)."""
        return "HTTP_" + self.header.upper().replace("-", "_")

    @property
    def header_name(self) -> str:
        """The header's lower-case name, as ASGI carries it."""
        return self.header.lower()

    def client(self, peer: str | None, values: str | Iterable[str] | None = None) -> str:
        """The client's address as a key segment: ``peer`` is the connection's remote
        address; ``values`` the proxy header, one string or every line of it in order."""
        own = _canonical(peer, self.ipv6_prefix)
        if not self.reads_header or not values:
            return own
        text = values if isinstance(values, str) else ",".join(values)
        hops = _forwarded_hops(text) if self.header == FORWARDED else _xff_hops(text)
        if self.trusted_networks:
            found = self._walk(peer, hops)
        else:
            found = hops[-self.trusted_count] if len(hops) >= self.trusted_count else None
        address = _address(found) if found is not None else None
        return own if address is None else _grouped(address, self.ipv6_prefix)

    def _walk(self, peer: str | None, hops: list[str | None]) -> str | None:
        """The rightmost hop outside the trusted networks, if a trusted peer sent it."""
        if not self._trusted(_address(peer)):
            return None
        for hop in reversed(hops):
            if not self._trusted(_address(hop)):
                return hop  # an untrusted address, or garbage (no address at all)
        return hops[0] if hops else None  # every hop is ours: the request began inside

    def _trusted(self, address: IPAddress | None) -> bool:
        return address is not None and any(address in net for net in self.trusted_networks)


def client_ip(
    peer: str | None, values: str | Iterable[str] | None = None, proxies: Proxies | int = 0
) -> str:
    """``Proxies.client``; an int stands for ``Proxies(trusted_count=n)``."""
    rule = proxies if isinstance(proxies, Proxies) else Proxies(trusted_count=proxies)
    return rule.client(peer, values)


def _xff_hops(text: str) -> list[str | None]:
    """The rightmost ``MAX_HOPS`` entries; ``None`` stands for whatever lies further left."""
    parts: list[str | None] = list(text.rsplit(",", MAX_HOPS))
    if len(parts) > MAX_HOPS:
        parts[0] = None
    return parts


def _forwarded_hops(text: str) -> list[str | None]:
    """The ``for=`` value of each RFC 7239 element (``None`` when an element has none)."""
    elements: list[str] = [""]
    for piece in _FORWARDED_PIECE.findall(text):
        if piece == ",":
            elements.append("")
        else:
            elements[-1] += piece
    hops = [_for_value(element) for element in elements[-MAX_HOPS - 1 :]]
    if len(elements) > MAX_HOPS:
        hops[0] = None
    return hops


def _for_value(element: str) -> str | None:
    """An element's ``for=`` value, unquoted; None if it has none or a broken quote."""
    found = _FOR_PARAM.search(element)
    if found is None:
        return None
    value = found[1].strip()
    if not value.startswith('"'):
        return value
    if len(value) < 2 or not value.endswith('"'):
        return None
    return _UNESCAPE.sub(r"\1", value[1:-1])


def _canonical(peer: str | None, prefix: int) -> str:
    """The peer as a key segment: its canonical address, else its own text (a unix
    socket's path, a test client's name), else ``unknown``."""
    text = (peer or "").strip()
    address = _address(text)
    if address is None:
        return text or "unknown"
    return _grouped(address, prefix)


def _address(token: str | None) -> IPAddress | None:
    if token is None or len(token) > _MAX_TOKEN:
        return None
    return _parse(token)


@lru_cache(maxsize=4096)
def _parse(token: str) -> IPAddress | None:
    """An address without port, brackets or zone id, IPv4-mapped IPv6 as IPv4; None when
    ``token`` is not one (cached: hot clients repeat, and parsing costs microseconds)."""
    host = token.strip()
    if host.startswith("["):
        host, closed, rest = host[1:].partition("]")
        if not closed or (rest and not (rest[0] == ":" and _PORT.fullmatch(rest[1:]))):
            return None
    elif host.count(":") == 1:  # IPv4 with a port
        host, _, port = host.partition(":")
        if not _PORT.fullmatch(port):
            return None
    host = host.partition("%")[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@lru_cache(maxsize=4096)
def _grouped(address: IPAddress, prefix: int) -> str:
    """IPv4 as is; IPv6 as the address of its ``/prefix`` network."""
    if isinstance(address, ipaddress.IPv4Address) or prefix >= 128:
        return str(address)
    return str(ipaddress.IPv6Network((address, prefix), strict=False).network_address)


def check_networks(value: Any, kind: Problem = Problem.PROXY_NETWORKS) -> tuple[IPNetwork, ...]:
    """A list of CIDRs (``"10.0.0.0/8"``, ``"2001:db8::/32"``, or a single address): the
    trusted proxies, or (``kind`` EXEMPT) the clients never limited."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ConfigError(
            f"must be a list of networks such as ['10.0.0.0/8'], got {value!r}", kind=kind
        )
    networks = []
    for i, item in enumerate(value):
        try:
            network = ipaddress.ip_network(item)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"[{i}] {item!r} is not a network in CIDR form: {exc}", kind=kind
            ) from None
        if network.prefixlen == 0:
            why = (
                "trusts every address, so any client could pick its bucket"
                if kind is Problem.PROXY_NETWORKS
                else "covers every address, so nothing would be limited"
            )
            raise ConfigError(f"[{i}] {item!r} {why}", kind=kind)
        networks.append(network)
    return tuple(networks)


def address_in(text: str, networks: tuple[IPNetwork, ...]) -> bool:
    """Whether the address ``text`` (a client as ``Proxies.client`` gives it) lies in one
    of ``networks``; text that is not an address lies in none."""
    address = _address(text)
    return address is not None and any(address in net for net in networks)


def check_proxy_count(value: Any) -> int:
    count = check_count(value, "the number of trusted proxies", minimum=0, kind=Problem.PROXIES)
    if count > MAX_HOPS:
        raise ConfigError(
            f"at most {MAX_HOPS} trusted proxies, got {value!r}: a count larger than the "
            "real chain believes addresses the client wrote",
            kind=Problem.PROXIES,
        )
    return count


def check_proxy_header(value: Any) -> str:
    for name in PROXY_HEADERS:
        if isinstance(value, str) and value.lower() == name.lower():
            return name
    raise ConfigError(
        f"must be one of {list(PROXY_HEADERS)}, got {value!r}", kind=Problem.PROXY_HEADER
    )


def check_ipv6_prefix(value: Any) -> int:
    prefix = check_count(value, "the IPv6 prefix length", minimum=32, kind=Problem.IPV6_PREFIX)
    if prefix > 128:
        raise ConfigError(
            f"the IPv6 prefix length must be 32 to 128, got {value!r}", kind=Problem.IPV6_PREFIX
        )
    return prefix
