"""``@ratelimit(policy, cost=...)`` for plain Django views, sync or async.

The policy is looked up on each request (settings may change under
``override_settings``); its name and the cost are checked when the view is decorated and
again by the system checks, which find decorated views through the URLconf.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpResponse

from .conf import get_runtime
from .core.bucket import Decision
from .core.config import check_cost, check_policy_name
from .core.stores.base import StoreError
from .identity import aidentity_for, identity_for
from .responses import add_headers, denied_response, remember, unavailable_response

__all__ = ["ratelimit"]

View = Callable[..., Any]


def _cost(policy: str, cost: float | None) -> float:
    return get_runtime().policy(policy).cost if cost is None else cost


def _answer(request: Any, policy: str, decision: Decision) -> HttpResponse | None:
    remember(request, policy, decision)
    return None if decision.allowed else denied_response(request, decision)


def ratelimit(policy: str = "default", *, cost: float | None = None) -> Callable[[View], View]:
    """Charge ``cost`` (default: the policy's) to the caller's bucket of ``policy``."""
    check_policy_name(policy)
    if cost is not None:
        check_cost(cost, math.inf)

    def decorate(view: View) -> View:
        if iscoroutinefunction(view):
            wrapped = _async_view(view, policy, cost)
        else:
            wrapped = _sync_view(view, policy, cost)
        wrapped.ratelimit_policy = policy  # type: ignore[attr-defined]  # read by checks
        wrapped.ratelimit_cost = cost  # type: ignore[attr-defined]
        return wrapped

    return decorate


def _sync_view(view: View, policy: str, cost: float | None) -> View:
    @functools.wraps(view)
    def wrapped(request: Any, *args: Any, **kwargs: Any) -> HttpResponse:
        limiter = get_runtime().limiter(policy)
        try:
            decision = limiter.allow_request(identity_for(request), _cost(policy, cost))
        except StoreError:
            return unavailable_response()
        denied = _answer(request, policy, decision)
        if denied is not None:
            return denied
        return add_headers(request, view(request, *args, **kwargs))

    return wrapped


def _async_view(view: View, policy: str, cost: float | None) -> View:
    @functools.wraps(view)
    async def wrapped(request: Any, *args: Any, **kwargs: Any) -> HttpResponse:
        limiter = get_runtime().async_limiter(policy)
        identity = await aidentity_for(request)
        try:
            decision = await limiter.allow_request(identity, _cost(policy, cost))
        except StoreError:
            return unavailable_response()
        denied = _answer(request, policy, decision)
        if denied is not None:
            return denied
        return add_headers(request, await view(request, *args, **kwargs))

    return markcoroutinefunction(wrapped)
