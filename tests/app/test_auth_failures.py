"""Failed authentication is charged to the client address (the ``auth_failures``
policy), and once that bucket is empty a request presenting credentials is answered 429
*before* they are checked: no password hash is computed for it.

Hashing is counted with ``user_login_failed`` receivers and a counting hasher check:
the 429s must not add to either.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import aauthenticate, authenticate, get_user_model
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, JsonResponse
from django.test import Client
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ratelimit_app.decorators import ratelimit
from tests.views import PingView

FAILURES = {"capacity": 3, "refill_rate": 1e-6}


@csrf_exempt
@ratelimit("default", auth_failures=True)
def login(request: HttpRequest) -> JsonResponse:
    user = authenticate(request, username=request.POST["username"], password=request.POST["pw"])
    return JsonResponse({"ok": user is not None}, status=200 if user else 401)


@csrf_exempt
@ratelimit("default", auth_failures=True)
async def alogin(request: HttpRequest) -> JsonResponse:
    user = await aauthenticate(
        request, username=request.POST["username"], password=request.POST["pw"]
    )
    return JsonResponse({"ok": user is not None}, status=200 if user else 401)


class BadToken(BaseAuthentication):
    """A token scheme that never calls ``authenticate()``: DRF's AuthenticationFailed."""

    def authenticate(self, request: Request) -> Any:
        if request.headers.get("Authorization", "").startswith("Token "):
            raise AuthenticationFailed("bad token")
        return None


class TokenView(APIView):
    authentication_classes = [BadToken]

    def get(self, request: Request) -> Response:
        return Response({"pong": True})


urlpatterns = [
    path("api/ping", PingView.as_view()),
    path("api/token", TokenView.as_view()),
    path("login", login),
    path("alogin", alogin),
]


@pytest.fixture
def failures(settings: Any, ratelimit: Any, slow_policies: Any, db: Any) -> Iterator[list[Any]]:
    """The auth_failures policy configured; the list of failed logins, as they happen."""
    settings.ROOT_URLCONF = __name__
    ratelimit(POLICIES={**slow_policies, "auth_failures": FAILURES})
    get_user_model().objects.create_user("ann", password="right")
    seen: list[Any] = []

    def count(sender: Any, **kwargs: Any) -> None:
        seen.append(kwargs.get("credentials"))

    user_login_failed.connect(count)
    yield seen
    user_login_failed.disconnect(count)


def basic(password: str) -> dict[str, str]:
    token = base64.b64encode(f"ann:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_drf_basic_auth_guessing_gets_429_before_the_password_is_checked(
    failures: list[Any],
) -> None:
    client = Client()
    codes = [client.get("/api/ping", headers=basic("wrong")).status_code for _ in range(5)]
    assert codes == [403, 403, 403, 429, 429]
    assert len(failures) == 3  # the 429s computed no hash
    locked = client.get("/api/ping", headers=basic("right"))
    assert locked.status_code == 429  # credentials from this address wait for the refill
    assert int(locked["Retry-After"]) > 0 and locked["RateLimit-Policy"].startswith(
        '"auth_failures"'
    )
    assert Client().get("/api/ping").status_code == 200  # no credentials: not this gate
    other = Client(REMOTE_ADDR="203.0.113.9")
    assert other.get("/api/ping", headers=basic("right")).status_code == 200


def test_a_failure_is_charged_once_however_many_layers_see_it(failures: list[Any]) -> None:
    """DRF's AuthenticationFailed (a bad token, no authenticate() call) charges the
    failure bucket; basic auth charges it at authenticate() only, not again at DRF."""
    client = Client()
    codes = [client.get("/api/token", headers={"Authorization": "Token x"}).status_code
             for _ in range(4)]  # fmt: skip
    assert codes == [403, 403, 403, 429]


def test_a_successful_login_costs_no_failure_token(failures: list[Any]) -> None:
    client = Client()
    for _ in range(5):
        assert client.post("/login", {"username": "ann", "pw": "right"}).status_code == 200
    assert failures == []


@pytest.mark.parametrize("view", ["/login", "/alogin"])
def test_a_login_view_refuses_guesses_before_checking_them(failures: list[Any], view: str) -> None:
    client = Client()
    codes = [client.post(view, {"username": "ann", "pw": "x"}).status_code for _ in range(5)]
    assert codes == [401, 401, 401, 429, 429]
    assert len(failures) == 3
    assert client.post(view, {"username": "ann", "pw": "right"}).status_code == 429


def test_without_the_policy_nothing_is_refused(
    settings: Any, ratelimit: Any, slow_policies: Any, db: Any
) -> None:
    settings.ROOT_URLCONF = __name__
    ratelimit(POLICIES=slow_policies)
    get_user_model().objects.create_user("ann", password="right")
    client = Client()
    assert {client.post("/login", {"username": "ann", "pw": "x"}).status_code
            for _ in range(5)} == {401}  # the view's own policy allows 5  # fmt: skip
