"""Decisions on the request, and the HTTP answers built from them.

The throttle and the decorator record each ``Decision`` on the Django request; the
middleware (or the decorator itself) renders the rate-limit headers from it, so DRF
responses get them too. Body bytes and headers come from the core, identical to Flask and
FastAPI, for DRF and plain views alike.
"""

from __future__ import annotations

import time
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpResponse
from django.utils.http import parse_http_date_safe

from .conf import get_runtime
from .core.bucket import Decision, binding
from .core.headers import UNAVAILABLE_HEADERS, denial_body, json_bytes, unavailable_body
from .core.limiter import AsyncTokenBucketRateLimiter
from .core.request_limits import Charge, asettle, settle

__all__ = [
    "add_headers",
    "asettle_all",
    "denied_response",
    "recorded",
    "remember",
    "settle_all",
    "unavailable_response",
]

_ATTR = "_ratelimit_decisions"


def _django_request(request: Any) -> Any:
    """DRF wraps the ``HttpRequest``; the middleware only ever sees the inner one."""
    return getattr(request, "_request", request)


def remember(request: Any, charge: Charge[Any]) -> None:
    """Keep a decision on the request: for the headers, and for ``settle_all``."""
    inner = _django_request(request)
    inner.__dict__.setdefault(_ATTR, []).append(charge)


def _charges(request: Any) -> list[Charge[Any]]:
    return _django_request(request).__dict__.get(_ATTR, [])  # type: ignore[no-any-return]


def recorded(request: Any) -> tuple[str, Decision] | None:
    """The decision to report: a denial if any, else the one closest to denying."""
    charges = _charges(request)
    if len(charges) < 2:  # the usual case: one limit on the request, or none
        return (charges[0].policy, charges[0].decision) if charges else None
    chosen = binding([charge.decision for charge in charges])
    found = next(charge for charge in charges if charge.decision is chosen)
    return found.policy, found.decision


def settle_all(request: Any, response: HttpResponse) -> None:
    """After the response: refund what its outcome does not count (each charge once;
    the decorator settles its own, the middleware what DRF and itself charged)."""
    for charge in _charges(request):
        if not charge.settled:
            settle(charge, response.status_code, response)


async def asettle_all(request: Any, response: HttpResponse) -> None:
    """The async twin; a charge DRF made with the sync limiter is refunded in a worker
    thread, never on the event loop."""
    for charge in _charges(request):
        if charge.settled:
            continue
        if isinstance(charge.limiter, AsyncTokenBucketRateLimiter):
            await asettle(charge, response.status_code, response)
        elif charge.refundable(response.status_code, response):
            refund = sync_to_async(charge.limiter.refund, thread_sensitive=False)
            await refund(charge.identity, charge.decision.cost)


def add_headers(request: Any, response: HttpResponse) -> HttpResponse:
    """Idempotent: the decorator and the middleware may both call it. A ``Retry-After``
    already on the response that asks for a longer wait is kept (another throttle on the
    view holds the request back longer than our bucket does)."""
    found = recorded(request)
    if found is not None:
        policy, decision = found
        for name, value in get_runtime().limits.headers(decision, policy).items():
            if name == "Retry-After" and not _sooner(response.get(name), int(value)):
                continue
            response[name] = value
    return response


def _sooner(present: str | None, seconds: int) -> bool:
    """Whether a ``Retry-After`` already set (delay-seconds or an HTTP-date) asks for
    less than ``seconds``; an absent or unreadable one does."""
    if present is None:
        return True
    present = present.strip()
    if present.isascii() and present.isdigit():
        return int(present) < seconds
    when = parse_http_date_safe(present)
    return when is None or when - time.time() < seconds


def _json(
    body: dict[str, Any], status: int, headers: dict[str, str] | None = None
) -> HttpResponse:
    response = HttpResponse(
        json_bytes(body), status=status, headers=headers, content_type="application/json"
    )
    # The limiter has logged this denial (or the store failure) already; without the mark
    # Django's request logger would add a second line for the same event.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def denied_response(request: Any, decision: Decision, policy: str | None = None) -> HttpResponse:
    """The 429: the core JSON body, plus headers (``Retry-After`` always): those of the
    decisions on the request, or of ``decision`` under ``policy`` when it is given."""
    if policy is not None:
        headers = get_runtime().limits.headers(decision, policy)
        return _json(denial_body(decision), 429, headers)
    return add_headers(request, _json(denial_body(decision), 429))


def unavailable_response() -> HttpResponse:
    """``ON_STORE_ERROR = "raise"`` in a web request: a 503 that says why, never a 500."""
    return _json(unavailable_body(), 503, dict(UNAVAILABLE_HEADERS))
