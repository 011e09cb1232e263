"""Failed authentication is charged: the ``auth_failures`` policy.

DRF authenticates before it throttles, so a client guessing passwords on a limited
endpoint got a 403 per guess and never a 429, each guess costing the server a password
hash (PBKDF2: about half a second of CPU). When ``POLICIES`` has a policy named
``auth_failures``, every failed authentication takes one token (its cost) from the
client address's bucket (its ``key``, default ``ip``): Django's ``user_login_failed``
signal (``authenticate()`` everywhere: DRF's basic auth, login views, ``obtain_auth_token``)
and DRF's ``AuthenticationFailed`` (tokens) both charge it, once per request. While the
bucket cannot pay, a request that presents credentials (an ``Authorization`` header, or
any request to a view marked ``@ratelimit(..., auth_failures=True)``) is answered 429
*before* its credentials are checked: no hash is computed for it.

The refusal reads the bucket before the work, so attempts already under way when it runs
empty finish (and are charged); the charges themselves are atomic and exact.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpResponse

from .conf import get_runtime
from .core.bucket import Decision
from .core.request_keys import check_key
from .core.stores.base import StoreError
from .identity import facts_for
from .responses import denied_response

__all__ = ["AUTH_FAILURES", "aguard", "charge_failure", "guard", "on_login_failed"]

AUTH_FAILURES = "auth_failures"
_CHARGED = "_ratelimit_auth_failure"
_IP = check_key("ip")


def _identity(request: Any) -> str | None:
    """The client's identity in the policy: never the user (user=False: reading DRF's
    ``request.user`` would authenticate, which is what the guard must come before)."""
    policy = get_runtime().settings.policies[AUTH_FAILURES]
    return (policy.key or _IP).identity(facts_for(_inner(request), user=False))


def _inner(request: Any) -> Any:
    return getattr(request, "_request", request)


def configured() -> bool:
    return AUTH_FAILURES in get_runtime().settings.policies


def guard(request: Any) -> HttpResponse | None:
    """A 429 when the client's ``auth_failures`` bucket cannot pay for one more failure
    (None: go on and check the credentials). A failing store never refuses."""
    if not configured():
        return None
    identity, cost = _identity(request), get_runtime().policy(AUTH_FAILURES).cost
    try:
        found = get_runtime().limiter(AUTH_FAILURES).peek(identity) if identity else None
    except StoreError:
        return None
    if found is None or found.remaining >= cost:
        return None
    refused = Decision(False, found.remaining, cost, found.config)
    return denied_response(request, refused, AUTH_FAILURES)


async def aguard(request: Any) -> HttpResponse | None:
    """The async twin (the peek is a blocking call: it runs in a worker thread)."""
    if not configured():
        return None
    return await sync_to_async(guard, thread_sensitive=False)(request)


def charge_failure(request: Any) -> None:
    """One failed authentication: take a token from the client's bucket (once a request)."""
    if request is None or not configured():
        return
    inner = _inner(request)
    if inner.__dict__.get(_CHARGED):
        return
    inner.__dict__[_CHARGED] = True
    identity = _identity(inner)
    if identity is not None:
        try:
            cost = get_runtime().policy(AUTH_FAILURES).cost
            get_runtime().limiter(AUTH_FAILURES).allow_request(identity, cost)
        except StoreError:
            pass  # under "raise": nothing to refuse here, the next guard will read it


def on_login_failed(sender: Any, credentials: Any = None, request: Any = None, **_: Any) -> None:
    """``user_login_failed``: ``authenticate()`` refused the credentials."""
    charge_failure(request)
