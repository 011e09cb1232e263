"""``TokenBucketThrottle``: DRF's throttle contract over the shared token buckets.

Use it in ``DEFAULT_THROTTLE_CLASSES`` or a view's ``throttle_classes``. The view picks
its policy with ``throttle_scope`` (else ``"default"``) and may set ``throttle_cost`` or
``throttle_cost_by_method = {"POST": 3}`` (else the policy's cost), and ``throttle_key``,
``throttle_exempt_when``, ``throttle_deduct_when``, ``throttle_charge_on_status`` (else
the policy's). A method the view does not implement (a 405), DRF's automatic
``OPTIONS`` and a CORS preflight cost nothing. ``wait()`` is the exact delay, so DRF's
own 429 carries a ``Retry-After`` that is never early. Unlike DRF's
``SimpleRateThrottle`` nothing is a get-then-set on the cache and nothing is read at
import time. Refunds a response's outcome asks for are made by ``RateLimitMiddleware``.
"""

from __future__ import annotations

import math
from typing import Any

from rest_framework.exceptions import APIException, AuthenticationFailed, Throttled
from rest_framework.throttling import BaseThrottle
from rest_framework.views import exception_handler as drf_exception_handler

from .auth_failures import charge_failure
from .conf import get_runtime
from .core.bucket import Decision
from .core.exemptions import PREFLIGHT_HEADER, is_preflight
from .core.request_limits import bind, check
from .core.stores.base import StoreError
from .identity import facts_for
from .responses import denied_response, recorded, remember, unavailable_response
from .view_limits import drf_limit, implements, view_cost, view_policy_name

__all__ = ["RateLimitUnavailable", "TokenBucketThrottle", "exception_handler", "view_cost"]


class RateLimitUnavailable(APIException):
    """``ON_STORE_ERROR = "raise"`` in a request: a 503, never a 500."""

    status_code = 503
    default_detail = "Rate limiting is temporarily unavailable."
    default_code = "ratelimit_unavailable"
    wait = 1  # DRF's handler turns this into ``Retry-After: 1``


class TokenBucketThrottle(BaseThrottle):
    def __init__(self) -> None:
        self.decision: Decision | None = None

    def allow_request(self, request: Any, view: Any) -> bool:
        method = request.method
        if not implements(type(view), method):
            return True  # DRF answers 405 (or its own OPTIONS): nothing to charge
        if is_preflight(method, request.headers.get(PREFLIGHT_HEADER)):
            return True
        runtime = get_runtime()
        policy = runtime.policy(view_policy_name(view))
        view_class: Any = type(view)
        limit = drf_limit(view_class, policy.name, view_cost(view, method, policy))
        try:
            charge = check(bind(runtime.limits, limit), facts_for(request, request.user))
        except StoreError as exc:
            raise RateLimitUnavailable() from exc
        if charge is None:  # exempt, or no key
            return True
        remember(request, charge)
        self.decision = charge.decision
        return charge.decision.allowed

    def wait(self) -> float | None:
        if self.decision is None or self.decision.allowed:
            return None
        return self.decision.retry_after


def exception_handler(exc: Exception, context: dict[str, Any]) -> Any:
    """DRF's handler, except for the 429s and 503s we caused: those get the very response
    a plain view gets from ``@ratelimit`` (same bytes, same headers, logged once). Set
    ``REST_FRAMEWORK["EXCEPTION_HANDLER"]`` to this dotted path.

    A 429 is ours only when our bucket's wait is the binding one. DRF's ``Throttled.wait``
    is the longest wait of the throttles that refused, rounded up; when another throttle
    (say ``AnonRateThrottle``) waits longer, DRF's own answer stays, with its
    ``Retry-After``, so no client is told to come back too early."""
    request = context.get("request")
    if isinstance(exc, RateLimitUnavailable):
        return unavailable_response()
    if isinstance(exc, AuthenticationFailed):
        charge_failure(request)  # e.g. a bad token (passwords are charged at authenticate())
    if isinstance(exc, Throttled) and request is not None:
        found = recorded(request)
        if found is not None and not found[1].allowed and _binding(exc, found[1]):
            return denied_response(request, found[1])
    return drf_exception_handler(exc, context)


def _binding(exc: Throttled, decision: Decision) -> bool:
    """Our wait is the one DRF reports (both in whole seconds, rounded up)."""
    longest = getattr(exc, "wait", None)  # DRF sets it; its type stubs do not declare it
    return longest is None or math.ceil(decision.retry_after) >= longest
