"""Demo endpoints: the same two routes as the Flask and FastAPI demos, DRF and plain.

* ``/api/ping`` (cost 1) and ``/api/upload`` (cost 3): DRF views limited by
  ``TokenBucketThrottle`` (the default throttle class in settings).
* ``/plain/ping`` (sync) and ``/plain/upload`` (async): plain Django views with
  ``@ratelimit``.
* ``/api/builtin/ping``: DRF's own ``ScopedRateThrottle``, kept for comparison
  (``bench/drf_http.py``).
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from ratelimit_app.decorators import ratelimit


class PingView(APIView):
    throttle_scope = "default"

    def get(self, request: Request) -> Response:
        return Response({"pong": True})


class UploadView(APIView):
    throttle_scope = "upload"  # cost 3 from the policy; throttle_cost_by_method also works

    def post(self, request: Request) -> Response:
        return Response({"uploaded": True})


class BuiltinPingView(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "builtin"

    def get(self, request: Request) -> Response:
        return Response({"pong": True})


@require_GET
@ratelimit("default")
def plain_ping(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"pong": True})


@csrf_exempt
@require_POST
@ratelimit("upload", cost=3)
async def plain_upload(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"uploaded": True})


def health(request: HttpRequest) -> JsonResponse:
    """Not limited: for readiness probes."""
    return JsonResponse({"ok": True})
