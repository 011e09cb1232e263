"""Store URLs: what one names, and how to show it without its password.

``memory://``; one Redis node as redis-py reads it (``redis://``, ``rediss://`` for TLS,
``unix://``); a Sentinel-managed master,
``redis+sentinel://[[user]:password@]host:port,host:port/service_name[/db]``; or a
Cluster, ``redis+cluster://[[user]:password@]host:port,host:port``. Parsing is
framework-free and strict, so Django's ``STORE`` and the Flask/FastAPI ``STORAGE_URL``
refuse the same mistakes with the same words, at start-up. A URL is only ever shown
through ``redacted``: a password never reaches a log, an error or the admin page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from ..config import ConfigError, Problem

__all__ = ["StoreURL", "parse_store_url", "redacted"]

_SINGLE = ("redis", "rediss", "unix")
_MULTI = {"redis+sentinel": ("sentinel", 26379), "redis+cluster": ("cluster", 6379)}
_HOST = re.compile(r"\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?|([A-Za-z0-9_.-]+)(?::(\d{1,5}))?")
_PLAIN_USER = re.compile(r"[A-Za-z0-9_.-]*")
_SERVICE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_FORMS = (
    "'memory://', 'redis://host:port/db' (also rediss:// and unix://), "
    "'redis+sentinel://host:port,host:port/service_name/db' or "
    "'redis+cluster://host:port,host:port'"
)


@dataclass(frozen=True, slots=True)
class StoreURL:
    """A parsed store URL. ``kind`` is ``memory``, ``redis`` (one node: ``url`` goes to
    redis-py as is), ``sentinel`` or ``cluster`` (``hosts`` are the sentinels or the
    cluster's start-up nodes). Its repr never shows the password."""

    kind: str
    url: str
    hosts: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        return f"StoreURL({redacted(self.url)!r})"

    @property
    def credentials(self) -> dict[str, Any]:
        """``username``/``password`` keyword arguments for redis-py, when given."""
        given = {"username": self.username, "password": self.password}
        return {key: value for key, value in given.items() if value}


def redacted(url: str) -> str:
    """``url`` with everything before its last ``@`` but the user name replaced by
    ``***``: a password with a ``/``, ``?`` or ``#`` in it (never escaped, as it should
    be) is hidden too, and so is a lone user part, a common way to write a password."""
    scheme, sep, rest = url.partition("://")
    creds, at, after = rest.rpartition("@")
    if not (sep and at):
        return url
    user, colon, _ = creds.partition(":")
    shown = f"{user}:***" if colon and _PLAIN_USER.fullmatch(user) else "***"
    return f"{scheme}://{shown}@{after}"


def _bad(url: str, why: str) -> ConfigError:
    return ConfigError(f"{redacted(url)!r} {why}", kind=Problem.STORAGE)


def parse_store_url(url: Any) -> StoreURL:
    """The store ``url`` names; ``ConfigError`` (kind ``STORAGE``) saying what is wrong."""
    if not isinstance(url, str):
        message = f"must be a store URL string, got {type(url).__name__}"
        raise ConfigError(message, kind=Problem.STORAGE)
    if url == "memory://":
        return StoreURL("memory", url)
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme in _SINGLE:
        return _single(url)
    if scheme in _MULTI:
        return _multi(url, *_MULTI[scheme])
    raise _bad(url, f"is not a store URL: use {_FORMS}")


def _single(url: str) -> StoreURL:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise _bad(url, f"is not a valid URL: {exc}") from None
    if not (parts.hostname or parts.path):
        raise _bad(url, "names no host or socket path")
    return StoreURL("redis", url)


def _multi(url: str, kind: str, default_port: int) -> StoreURL:
    rest = url.partition("://")[2]
    netloc, _, path = rest.partition("/")
    if "?" in url or "#" in url:
        raise _bad(url, f"has query options, which a {kind} URL does not read")
    creds, _, host_list = netloc.rpartition("@")
    user, _sep, password = creds.partition(":")
    hosts = tuple(_host(url, item, default_port) for item in host_list.split(","))
    segments = [part for part in path.split("/") if part] if path else []
    service, db = "", 0
    if kind == "sentinel":
        if not segments or not _SERVICE.fullmatch(segments[0]):
            raise _bad(url, "needs the master's service name: .../service_name/db")
        service, segments = segments[0], segments[1:]
    if len(segments) > 1 or (segments and not segments[0].isdigit()):
        raise _bad(url, "has a path that is not a database number")
    if segments:
        db = int(segments[0])
    if kind == "cluster" and db != 0:
        raise _bad(url, "names a database other than 0, which a cluster does not have")
    return StoreURL(
        kind, url, hosts, service, db, unquote(user) or None, unquote(password) or None
    )


def _host(url: str, item: str, default_port: int) -> tuple[str, int]:
    found = _HOST.fullmatch(item.strip())
    if found is None:
        raise _bad(url, f"has a host that is not 'host:port': {item.strip()!r}")
    host = found[1] or found[3]
    port = int(found[2] or found[4] or default_port)
    if not 0 < port < 65536:
        raise _bad(url, f"has a port out of range: {port}")
    return host, port
