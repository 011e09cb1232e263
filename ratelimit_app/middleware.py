"""``RateLimitMiddleware``: a global limit for plain Django views, and rate-limit headers
and refunds on every limited response.

* With ``RATELIMIT["DEFAULT_POLICY"]`` set, every view is limited by that policy (as
  Flask's ``DEFAULT_POLICY`` and the FastAPI middleware do), except views marked
  ``@ratelimit_exempt``, paths under ``RATELIMIT["EXEMPT_PATHS"]`` (prefixes), and views
  that limit themselves (``@ratelimit``, or a DRF view with ``TokenBucketThrottle``):
  those are charged once, by their own limit, never twice. A CORS preflight and a
  method a class-based view lacks are free; a 405 is refunded.
* When the ``auth_failures`` policy is configured, a request carrying an
  ``Authorization`` header is refused with a 429 before its credentials are checked
  while the client's failure bucket is empty (``ratelimit_app.auth_failures``).
* On the way out, each decision recorded on the request (the DRF throttle,
  ``@ratelimit``, the global limit) is rendered with the core's ``render_headers``, and
  its tokens are given back when the response's outcome does not count
  (``deduct_when`` / ``charge_on_status``). DRF builds its 429 without any hook for
  headers, so this is how DRF responses get them.

Works in both sync and async stacks without a thread hop for memory and async stores.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from .auth_failures import aguard, guard
from .conf import get_runtime, global_limit
from .core.exemptions import PREFLIGHT_HEADER, is_preflight
from .core.request_limits import Bound, Charge, acheck, bind, check
from .core.stores.base import StoreError
from .identity import afacts_for, facts_for
from .responses import (
    add_headers,
    asettle_all,
    denied_response,
    remember,
    settle_all,
    unavailable_response,
)
from .view_limits import implements, limits_itself

__all__ = ["RateLimitMiddleware"]


class RateLimitMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
        # Django adapts process_view to the stack: an async one needs no thread there
        self.process_view: Any = self._aprocess_view if self.is_async else self._process_view

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self.__acall__(request)
        response = self.get_response(request)
        settle_all(request, response)
        return add_headers(request, response)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        response = await self.get_response(request)
        await asettle_all(request, response)
        return add_headers(request, response)

    def _process_view(
        self, request: HttpRequest, view: Any, args: Any, kwargs: Any
    ) -> HttpResponse | None:
        if "authorization" in request.headers and (refused := guard(request)):
            return refused
        bound = _global(request, view, asynchronous=False)
        try:
            charge = None if bound is None else check(bound, facts_for(request))
        except StoreError:
            return unavailable_response()
        return _answered(request, charge)

    async def _aprocess_view(
        self, request: HttpRequest, view: Any, args: Any, kwargs: Any
    ) -> HttpResponse | None:
        if "authorization" in request.headers and (refused := await aguard(request)):
            return refused
        bound = _global(request, view, asynchronous=True)
        try:
            charge = None if bound is None else await acheck(bound, await afacts_for(request))
        except StoreError:
            return unavailable_response()
        return _answered(request, charge)


def _answered(request: HttpRequest, charge: Charge[Any] | None) -> HttpResponse | None:
    """Keep the global limit's decision on the request; the 429 when it denies."""
    if charge is None:
        return None
    remember(request, charge)
    return None if charge.decision.allowed else denied_response(request, charge.decision)


def _global(request: HttpRequest, view: Any, asynchronous: bool) -> Bound[Any] | None:
    """The global limit that applies to this request, if any."""
    runtime = get_runtime()
    found = global_limit(runtime)
    if found is None or limits_itself(view) or getattr(view, "ratelimit_exempt", False):
        return None
    limit, exempt_paths = found
    if request.path_info.startswith(exempt_paths):
        return None
    method = request.method or "GET"
    if is_preflight(method, request.headers.get(PREFLIGHT_HEADER)):
        return None
    view_class = getattr(view, "view_class", None)
    if view_class is not None and not implements(view_class, method):
        return None
    return bind(runtime.async_limits if asynchronous else runtime.limits, limit)
