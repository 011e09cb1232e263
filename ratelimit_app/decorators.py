"""``@ratelimit(policy, cost=..., key=..., ...)`` for plain Django views, sync or async,
and ``@ratelimit_exempt`` for views the middleware's ``DEFAULT_POLICY`` must leave alone.

The view's ``Limit`` is read when the view is decorated (a bad key, ``exempt_when`` or
``charge_on_status`` fails at import); its policy is looked up on each request (settings
may change under ``override_settings``) and again by the system checks, which find
decorated views through the URLconf.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, Unpack

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpResponse

from .auth_failures import aguard, guard
from .conf import get_runtime
from .core.config import check_cost, check_policy_name
from .core.exemptions import PREFLIGHT_HEADER, is_preflight
from .core.request_limits import Bound, Limit, Rules, acheck, asettle, bind, check, settle
from .core.stores.base import StoreError
from .identity import afacts_for, facts_for
from .responses import add_headers, denied_response, remember, unavailable_response

__all__ = ["ratelimit", "ratelimit_exempt"]

View = Callable[..., Any]


def ratelimit(
    policy: str = "default",
    *,
    cost: float | None = None,
    auth_failures: bool = False,
    **rules: Unpack[Rules],
) -> Callable[[View], View]:
    """Charge ``cost`` (default: the policy's) to the caller's bucket of ``policy``.

    ``key`` (and ``on_missing_key``), ``exempt_when``, ``deduct_when`` and
    ``charge_on_status`` override the policy's (see ``core.request_keys`` and
    ``core.outcomes``); ``auth_failures=True`` marks a login view: refused with a 429
    before it runs while the client's ``auth_failures`` bucket is empty
    (``ratelimit_app.auth_failures``).
    """
    check_policy_name(policy)
    if cost is not None:
        check_cost(cost, math.inf)
    limit = Limit.of(policy, cost, **rules)

    def decorate(view: View) -> View:
        if iscoroutinefunction(view):
            wrapped = _async_view(view, limit, auth_failures)
        else:
            wrapped = _sync_view(view, limit, auth_failures)
        wrapped.ratelimit_limit = limit  # type: ignore[attr-defined]  # read by checks
        return wrapped

    return decorate


def ratelimit_exempt(view: View) -> View:
    """Never limit this view by the middleware's ``DEFAULT_POLICY`` (a wrapper is
    marked, as ``csrf_exempt`` does, so the function itself is left as it was)."""
    if iscoroutinefunction(view):

        async def exempt_async(*args: Any, **kwargs: Any) -> Any:
            return await view(*args, **kwargs)

        wrapped: View = markcoroutinefunction(functools.wraps(view)(exempt_async))
    else:

        def exempt(*args: Any, **kwargs: Any) -> Any:
            return view(*args, **kwargs)

        wrapped = functools.wraps(view)(exempt)
    wrapped.ratelimit_exempt = True  # type: ignore[attr-defined]
    return wrapped


def _bound(request: Any, limit: Limit, asynchronous: bool) -> Bound[Any] | None:
    """The view's limit on this site, or None for a CORS preflight (free)."""
    if is_preflight(request.method, request.headers.get(PREFLIGHT_HEADER)):
        return None
    runtime = get_runtime()
    return bind(runtime.async_limits if asynchronous else runtime.limits, limit)


def _sync_view(view: View, limit: Limit, auth_failures: bool) -> View:
    @functools.wraps(view)
    def wrapped(request: Any, *args: Any, **kwargs: Any) -> HttpResponse:
        refused = guard(request) if auth_failures else None
        bound = _bound(request, limit, False) if refused is None else None
        if bound is None:
            return refused or view(request, *args, **kwargs)
        try:
            charge = check(bound, facts_for(request))
        except StoreError:
            return unavailable_response()
        if charge is None:  # exempt, or no key: not limited, no headers
            return view(request, *args, **kwargs)  # type: ignore[no-any-return]
        remember(request, charge)
        if not charge.decision.allowed:
            return denied_response(request, charge.decision)
        try:
            response = view(request, *args, **kwargs)
        except Exception:
            settle(charge, 500, None)
            raise
        settle(charge, response.status_code, response)
        return add_headers(request, response)

    return wrapped


def _async_view(view: View, limit: Limit, auth_failures: bool) -> View:
    @functools.wraps(view)
    async def wrapped(request: Any, *args: Any, **kwargs: Any) -> HttpResponse:
        refused = await aguard(request) if auth_failures else None
        bound = _bound(request, limit, True) if refused is None else None
        if bound is None:
            return refused or await view(request, *args, **kwargs)
        try:
            charge = await acheck(bound, await afacts_for(request))
        except StoreError:
            return unavailable_response()
        if charge is None:
            return await view(request, *args, **kwargs)  # type: ignore[no-any-return]
        remember(request, charge)
        if not charge.decision.allowed:
            return denied_response(request, charge.decision)
        try:
            response = await view(request, *args, **kwargs)
        except Exception:
            await asettle(charge, 500, None)
            raise
        await asettle(charge, response.status_code, response)
        return add_headers(request, response)

    return markcoroutinefunction(wrapped)
