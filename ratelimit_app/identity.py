"""Who a request is charged to: one definition for the throttle, decorator and admin.

The authenticated user's primary key (``user:<pk>``) when there is one, else the client
address (``ip:<addr>``) as the core's ``Proxies.client`` reads it: a proxy header is
believed only through ``RATELIMIT['TRUSTED_PROXIES']`` or ``['TRUSTED_PROXY_COUNT']``
(none by default), so a client cannot pick its own bucket by sending the header.
"""

from __future__ import annotations

from typing import Any

from .conf import get_runtime

__all__ = ["aidentity_for", "client_address", "identity_for"]


def client_address(request: Any) -> str:
    """``request`` is a Django ``HttpRequest`` or a DRF ``Request`` (which proxies META)."""
    meta = request.META
    proxies = get_runtime().settings.proxies
    forwarded = meta.get(proxies.environ_key) if proxies.reads_header else None
    return proxies.client(meta.get("REMOTE_ADDR"), forwarded)


def _from_user(request: Any, user: Any) -> str:
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user:{user.pk}"
    return f"ip:{client_address(request)}"


def identity_for(request: Any, user: Any = None) -> str:
    """Sync views and DRF (pass DRF's ``request.user``, set by its authenticators)."""
    if user is None:
        user = getattr(request, "user", None)
    return _from_user(request, user)


async def aidentity_for(request: Any) -> str:
    """Async views: ``request.auser()`` loads the user without a sync DB call on the loop."""
    auser = getattr(request, "auser", None)
    user = await auser() if auser is not None else None
    return _from_user(request, user)
