"""The DRF views of ``tests/urls.py`` via the test client: ``TokenBucketThrottle`` end to end."""

from __future__ import annotations

import itertools
import math
import time
from typing import Any

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.test import Client, RequestFactory, override_settings
from django.utils.http import http_date
from hypothesis import event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from ratelimit_app.checks import refuse_bad_settings
from ratelimit_app.conf import get_runtime
from ratelimit_app.core import ConfigError
from ratelimit_app.core.request_limits import Charge, Limit, bind
from ratelimit_app.responses import add_headers, remember
from ratelimit_app.testing import free_port
from ratelimit_app.throttling import TokenBucketThrottle, view_cost
from tests.hostile_settings import (
    PROPERTY_EXAMPLES,
    check_headers,
    settings_dicts,
    visits,
    with_hostile_examples,
)

BACKENDS = ["locmem", "django-redis", "redis-cache"]
LEGACY = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
IETF = ("RateLimit-Policy", "RateLimit")


@pytest.mark.parametrize("backend", BACKENDS)
def test_five_pings_pass_the_sixth_is_429(client: Client, ratelimit: Any, backend: str) -> None:
    ratelimit(CACHE=backend)
    for left in (4, 3, 2, 1, 0):
        response = client.get("/api/ping")
        assert response.status_code == 200
        assert response["X-RateLimit-Remaining"] == str(left)
        assert response["X-RateLimit-Limit"] == "5"
        assert response["RateLimit-Policy"] == '"default";q=5;w=5'
        assert "Retry-After" not in response
    denied = client.get("/api/ping")
    assert denied.status_code == 429
    assert denied["Retry-After"] == "1"
    assert denied["X-RateLimit-Remaining"] == "0"
    assert denied["RateLimit"] == '"default";r=0;t=1'
    body = denied.json()
    assert body["detail"] == "Request was throttled. Expected available in 1 second."
    assert 0 < body["retry_after"] <= 1.0


def test_upload_costs_three(client: Client, ratelimit: Any) -> None:
    first = client.post("/api/upload")
    assert first.status_code == 200
    assert first["X-RateLimit-Remaining"] == "2"
    assert first["RateLimit"] == '"upload";r=2;t=1'
    second = client.post("/api/upload")
    assert second.status_code == 429
    assert 0 < second.json()["retry_after"] <= 1.0  # (3 - 2 tokens) / 1 per second, minus refill
    assert client.get("/api/ping").status_code == 200  # another policy, another bucket


def test_retry_after_is_never_early_on_the_real_clock(client: Client, ratelimit: Any) -> None:
    ratelimit(POLICIES={"default": {"capacity": 1, "refill_rate": 20.0}})
    assert client.get("/api/ping").status_code == 200
    denied = client.get("/api/ping")
    assert denied.status_code == 429
    time.sleep(denied.json()["retry_after"])
    assert client.get("/api/ping").status_code == 200


@pytest.mark.django_db
def test_users_and_anonymous_clients_have_their_own_buckets(
    client: Client, ratelimit: Any, django_user_model: Any
) -> None:
    for _ in range(5):
        client.get("/api/ping")
    assert client.get("/api/ping").status_code == 429
    user = django_user_model.objects.create_user("ada", password="pw-for-tests")
    client.force_login(user)
    response = client.get("/api/ping")
    assert response.status_code == 200
    assert response["X-RateLimit-Remaining"] == "4"
    limiter = get_runtime().limiter("default")
    assert limiter.peek(f"user:{user.pk}").remaining == pytest.approx(4, abs=0.1)
    assert limiter.peek("ip:127.0.0.1").remaining < 1


def test_spoofed_forwarded_for_does_not_change_the_bucket(client: Client, ratelimit) -> None:
    for n in range(5):
        assert client.get("/api/ping", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code == 200
    assert client.get("/api/ping", HTTP_X_FORWARDED_FOR="203.0.113.99").status_code == 429


def test_forwarded_for_counts_behind_a_trusted_proxy(client: Client, ratelimit: Any) -> None:
    ratelimit(TRUSTED_PROXY_COUNT=1)
    for _ in range(5):
        client.get("/api/ping", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert client.get("/api/ping", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 429
    other = client.get("/api/ping", HTTP_X_FORWARDED_FOR="spoofed, 198.51.100.2")
    assert other.status_code == 200  # the proxy's view of the client, not the spoofed entry
    assert get_runtime().limiter("default").peek("ip:198.51.100.2").remaining < 5


@pytest.mark.parametrize(
    ("legacy", "ietf"), [(True, False), (False, True), (False, False)]
)  # fmt: skip
def test_header_families_can_be_switched_off(client, ratelimit, legacy, ietf) -> None:
    ratelimit(LEGACY_HEADERS=legacy, IETF_HEADERS=ietf)
    response = client.get("/api/ping")
    assert all((name in response) == legacy for name in LEGACY)
    assert all((name in response) == ietf for name in IETF)


@pytest.mark.parametrize(("mode", "status"), [("fallback", 200), ("allow", 200),
                                              ("deny", 429), ("raise", 503)])  # fmt: skip
def test_store_outage_never_gives_a_500(client, ratelimit, settings, mode, status) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "down": {"BACKEND": "django_redis.cache.RedisCache",
                 "LOCATION": f"redis://127.0.0.1:{free_port()}/0"},
    }  # fmt: skip
    ratelimit(CACHE="down", ON_STORE_ERROR=mode)
    response = client.get("/api/ping")
    assert response.status_code == status
    assert "Retry-After" in response or status == 200


_addresses = itertools.count(1)


@pytest.fixture
def fresh_client() -> Client:
    """A client from an address no other test uses: DRF's own throttles keep their
    history in the default cache, by address."""
    return Client(REMOTE_ADDR=f"192.0.2.{next(_addresses)}")


def test_another_throttles_longer_wait_is_kept(fresh_client: Client, ratelimit: Any) -> None:
    """3 per hour next to our 5 tokens: once both refuse, DRF's hour-long wait binds, and
    neither our middleware nor our exception handler may shorten it to our 1 second."""
    codes = [fresh_client.get("/api/two-throttles").status_code for _ in range(6)]
    assert codes == [200, 200, 200, 429, 429, 429]  # the hourly throttle refuses from #4
    denied = fresh_client.get("/api/two-throttles")  # our bucket is empty too now
    assert denied["X-RateLimit-Remaining"] == "0"
    assert int(denied["Retry-After"]) >= 3599
    assert "retry_after" not in denied.json()  # DRF's body: its wait, not ours
    assert "Expected available in 3" in denied.json()["detail"]


def test_our_longer_wait_binds_beside_another_throttle(
    fresh_client: Client, ratelimit: Any
) -> None:
    ratelimit(POLICIES={"default": {"capacity": 1, "refill_rate": 1e-4}})  # 10,000 s a token
    codes = [fresh_client.get("/api/two-throttles").status_code for _ in range(3)]
    assert codes == [200, 429, 429]  # ours refuses alone: ours binds
    denied = fresh_client.get("/api/two-throttles")  # both refuse: ours waits longer
    body = denied.json()
    assert body["retry_after"] > 3600
    assert denied["Retry-After"] == str(math.ceil(body["retry_after"]))


@pytest.mark.parametrize(
    ("present", "kept"),
    [("7200", True), ("0", False), ("soon", False), (http_date(time.time() + 7200), True),
     (http_date(time.time() - 60), False)],
)  # fmt: skip
def test_a_retry_after_already_present_is_never_lowered(
    ratelimit: Any, present: str, kept: bool
) -> None:
    request = RequestFactory().get("/")
    limiter = get_runtime().limiter("default")
    limiter.allow_request("ip:retry-after", 5)
    bound = bind(get_runtime().limits, Limit("default"))
    remember(
        request, Charge(bound, limiter, "ip:retry-after", limiter.allow_request("ip:retry-after"))
    )
    response = add_headers(request, HttpResponse(status=429, headers={"Retry-After": present}))
    assert response["Retry-After"] == (present if kept else "1")


class CostlyView(APIView):
    throttle_classes = [TokenBucketThrottle]
    throttle_scope = "default"
    throttle_cost = 2
    throttle_cost_by_method = {"POST": 4}

    def get(self, request: Any) -> Any:
        from rest_framework.response import Response

        return Response({})

    post = get


def test_view_costs_by_method_then_view_then_policy(ratelimit: Any) -> None:
    factory = APIRequestFactory()
    view = CostlyView.as_view()
    assert view(factory.post("/")).status_code == 200  # 4 of 5
    assert view(factory.get("/")).status_code == 429  # needs 2, 1 left
    policy = get_runtime().policy("upload")
    assert view_cost(APIView(), "GET", policy) == 3.0
    with pytest.raises(ConfigError, match="exceeds capacity"):
        view_cost(type("Huge", (), {"throttle_cost": 50})(), "GET", policy)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", ["/api/ping", "/plain/ping"])
def test_a_composite_policy_limits_drf_and_decorated_views(
    client: Client, ratelimit: Any, backend: str, path: str
) -> None:
    burst = {"capacity": 5, "refill_rate": 1.0}
    daily = {"capacity": 3, "refill_rate": 1e-6}
    ratelimit(CACHE=backend, POLICIES={"default": {"buckets": [burst, daily]}})
    assert [client.get(path).status_code for _ in range(4)] == [200, 200, 200, 429]
    denied = client.get(path)
    assert denied["X-RateLimit-Limit"] == "3"  # the bucket that holds the request back
    assert int(denied["Retry-After"]) >= 1e6


ROUTES = [("get", "/api/ping"), ("post", "/api/upload"), ("get", "/plain/ping")]


@hypothesis_settings(max_examples=PROPERTY_EXAMPLES, deadline=None)
@with_hostile_examples(route_offset=0)
@given(raw=settings_dicts, requests=visits, route_offset=st.integers(0, 2))
def test_accepted_settings_never_give_a_500(raw: Any, requests: Any, route_offset: int) -> None:
    """Settings that Django would refuse to start with, or that ``manage.py check``
    reports, are skipped; with any other, DRF and decorated views answer only 200s and
    429s (the test client raises any exception a view lets through)."""
    with override_settings(RATELIMIT={**raw, "CACHE": "default"}):
        try:
            refuse_bad_settings()
        except ImproperlyConfigured:
            event("refused at start-up")
            return
        if any(message.is_serious() for message in checks.run_checks(tags=["ratelimit"])):
            event("reported by manage.py check")  # e.g. /plain/upload's cost 3 > capacity
            return
        event("accepted")
        for route, forwarded_for in requests:
            method, path = ROUTES[(route + route_offset) % len(ROUTES)]
            extra = {} if forwarded_for is None else {"HTTP_X_FORWARDED_FOR": forwarded_for}
            response = getattr(Client(), method)(path, **extra)
            check_headers(response.status_code, response.headers)
