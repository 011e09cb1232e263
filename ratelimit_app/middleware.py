"""``RateLimitMiddleware``: rate-limit headers on every limited response.

It does not limit anything itself. The DRF throttle and ``@ratelimit`` record their
``Decision`` on the request; on the way out this middleware renders it with the core's
``render_headers`` (families switched by ``LEGACY_HEADERS``/``IETF_HEADERS``). DRF builds
its 429 without any hook for headers, so this is how DRF responses get them. Works in
both sync and async stacks without a thread hop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from .responses import add_headers

__all__ = ["RateLimitMiddleware"]


class RateLimitMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self.__acall__(request)
        return add_headers(request, self.get_response(request))

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        return add_headers(request, await self.get_response(request))
