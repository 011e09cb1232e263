"""The limited views the app's tests call, DRF and plain, on the routes of ``tests/urls.py``.

* ``/api/ping`` (GET) and ``/api/upload`` (POST): DRF views limited by
  ``TokenBucketThrottle`` (the default throttle class in ``tests/settings.py``), on the
  ``default`` and ``upload`` policies.
* ``/plain/ping`` (sync, GET) and ``/plain/upload`` (async, POST, cost 3): plain Django
  views with ``@ratelimit``.
* ``/api/two-throttles`` (GET): our throttle beside DRF's ``AnonRateThrottle`` at 3 per
  hour, which usually waits longer than our bucket.
* ``/healthz``: not limited.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from ratelimit_app.decorators import ratelimit
from ratelimit_app.throttling import TokenBucketThrottle


class PingView(APIView):
    throttle_scope = "default"

    def get(self, request: Request) -> Response:
        return Response({"pong": True})


class UploadView(APIView):
    throttle_scope = "upload"  # the cost, 3, comes from the policy

    def post(self, request: Request) -> Response:
        return Response({"uploaded": True})


class HourlyThrottle(AnonRateThrottle):
    rate = "3/hour"  # set here: DRF reads DEFAULT_THROTTLE_RATES once, at import


class TwoThrottlesView(APIView):
    throttle_classes = [TokenBucketThrottle, HourlyThrottle]

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
    return JsonResponse({"ok": True})
