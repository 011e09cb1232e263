"""How the core reads a Django request: one definition for the throttle, decorator,
middleware and admin.

The default key is the authenticated user's primary key (``user:<pk>``) when there is
one, else the client address (``ip:<addr>``) as the core's ``Proxies.client`` reads it:
a proxy header is believed only through ``RATELIMIT['TRUSTED_PROXIES']`` or
``['TRUSTED_PROXY_COUNT']`` (none by default), so a client cannot pick its own bucket by
sending the header. A policy or a view may name another key (``core.request_keys``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .conf import get_runtime

__all__ = ["DjangoFacts", "afacts_for", "client_address", "facts_for"]


def client_address(request: Any) -> str:
    """``request`` is a Django ``HttpRequest`` or a DRF ``Request`` (which proxies META)."""
    meta = request.META
    proxies = get_runtime().settings.proxies
    forwarded = meta.get(proxies.environ_key) if proxies.reads_header else None
    return proxies.client(meta.get("REMOTE_ADDR"), forwarded)


class DjangoFacts:
    """A ``core.request_keys.RequestFacts`` over a Django or DRF request; callables of the
    request (keys, tiers, ``exempt_when``) receive the request itself."""

    __slots__ = ("_ip", "_user", "request")

    def __init__(self, request: Any, user: Any) -> None:
        self.request = request
        self._user = user
        self._ip: str | None = None

    def ip(self) -> str:
        if self._ip is None:
            self._ip = client_address(self.request)
        return self._ip

    def user(self) -> Any:
        return self._user

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)  # type: ignore[no-any-return]

    def query(self, name: str) -> str | None:
        return self.request.GET.get(name)  # type: ignore[no-any-return]

    def call(self, func: Callable[..., Any]) -> Any:
        return func(self.request)


def facts_for(request: Any, user: Any = None) -> DjangoFacts:
    """Sync views and DRF (pass DRF's ``request.user``, set by its authenticators)."""
    return DjangoFacts(request, getattr(request, "user", None) if user is None else user)


async def afacts_for(request: Any) -> DjangoFacts:
    """Async views: ``request.auser()`` loads the user without a sync DB call on the loop."""
    auser = getattr(request, "auser", None)
    return DjangoFacts(request, await auser() if auser is not None else None)
