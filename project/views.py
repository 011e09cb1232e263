"""Demo endpoints: the same routes as the Flask and FastAPI demos, in DRF and plain Django.

Every limited route charges the client's one bucket of the ``default`` policy: a ping
takes 1 token, an upload takes 3.

* ``/api/ping`` and ``/api/upload``: DRF views limited by ``TokenBucketThrottle`` (the
  default throttle class in settings).
* ``/plain/ping`` (sync) and ``/plain/upload`` (async): plain Django views with
  ``@ratelimit``.
* ``/api/builtin/ping``: DRF's own ``ScopedRateThrottle``, kept for comparison
  (``bench/drf_http.py``).
* ``/api/login`` (POST ``username``, ``password``): a login view guarded by the
  ``auth_failures`` policy: 5 wrong passwords from one address, and every request from it
  that presents credentials (this view, or HTTP basic auth on the DRF views) is answered
  429 before any password is checked, until a token refills (one a minute).
* ``/`` lists them (the admin's "View site" link leads there); ``/healthz`` is not limited.
"""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.html import format_html, format_html_join
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from project.demo_config import UPLOAD_COST
from ratelimit_app.decorators import ratelimit

ENDPOINTS = [
    ("GET", "/api/ping", "DRF, 1 token"),
    ("POST", "/api/upload", f"DRF, {UPLOAD_COST} tokens"),
    ("GET", "/plain/ping", "plain Django view (sync), 1 token"),
    ("POST", "/plain/upload", f"plain Django view (async), {UPLOAD_COST} tokens"),
    ("GET", "/api/builtin/ping", "DRF's own ScopedRateThrottle, for contrast"),
    ("POST", "/api/login", "a login view: 5 failures per address, then 429 before checking"),
    ("GET", "/healthz", "not limited"),
    ("GET", "/admin/ratelimit_app/bucket/", "the live buckets (staff only)"),
]


class PingView(APIView):  # no throttle_scope: the "default" policy
    def get(self, request: Request) -> Response:
        return Response({"pong": True})


class UploadView(APIView):
    throttle_cost = UPLOAD_COST  # from the same bucket as a ping

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
@ratelimit("default", cost=UPLOAD_COST)
async def plain_upload(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"uploaded": True})


@csrf_exempt
@require_POST
@ratelimit("default", auth_failures=True)
def login(request: HttpRequest) -> JsonResponse:
    """Checks a password (a session login would follow); failures are charged to the
    client's ``auth_failures`` bucket by ``authenticate()`` itself."""
    user = authenticate(
        request, username=request.POST.get("username"), password=request.POST.get("password")
    )
    if user is None:
        return JsonResponse({"detail": "wrong username or password"}, status=401)
    return JsonResponse({"user": user.get_username()})


def health(request: HttpRequest) -> JsonResponse:
    """Not limited: for readiness probes."""
    return JsonResponse({"ok": True})


def index(request: HttpRequest) -> HttpResponse:
    """What the demo serves: where the admin's "View site" link leads."""
    rows = format_html_join(
        "\n", "<li><code>{} <a href='{}'>{}</a></code>: {}</li>",
        ((method, path, path, note) for method, path, note in ENDPOINTS),
    )  # fmt: skip
    return HttpResponse(
        format_html(
            "<!doctype html><title>ratelimit_app demo</title><h1>ratelimit_app demo</h1>"
            "<p>One bucket per client: 5 tokens, refilled at 1 per second.</p><ul>{}</ul>",
            rows,
        )
    )
