"""``RateLimitMiddleware``'s global limit (``DEFAULT_POLICY``) beyond the contract table:
path prefixes, class-based views' missing methods, async stacks, async views, and the
admin's tier column for a tiered policy."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import AsyncClient, Client
from django.urls import path
from django.views import View

from ratelimit_app.decorators import ratelimit
from ratelimit_app.middleware import RateLimitMiddleware


def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


async def aplain(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


class OnlyGet(View):
    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")


@ratelimit("default", deduct_when=lambda response: response.status_code < 500, key="ip")
async def aflaky(request: HttpRequest) -> HttpResponse:
    return HttpResponse(status=int(request.headers.get("X-Status", "200")))


def plan(request: HttpRequest) -> str | None:
    return request.headers.get("X-Plan")


@ratelimit("tiered")
def tiered(request: HttpRequest) -> JsonResponse:
    return JsonResponse({})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("plain", plain),
    path("aplain", aplain),
    path("healthz/live", plain),
    path("only-get", OnlyGet.as_view()),
    path("aflaky", aflaky),
    path("tiered", tiered),
]


@pytest.fixture
def global_limit(settings: Any, ratelimit: Any, slow_policies: Any) -> None:
    settings.ROOT_URLCONF = __name__
    ratelimit(DEFAULT_POLICY="default", EXEMPT_PATHS=["/healthz/"], POLICIES=slow_policies)


def remaining(response: Any) -> str | None:
    return response.headers.get("X-RateLimit-Remaining")


def test_exempt_path_prefixes_and_a_missing_method_cost_nothing(global_limit: None) -> None:
    client = Client()
    assert [remaining(client.get("/healthz/live")) for _ in range(3)] == [None] * 3
    assert client.post("/only-get").status_code == 405  # View lacks post: free
    assert [remaining(client.get("/plain")) for _ in range(2)] == ["4", "3"]
    assert remaining(client.get("/only-get")) == "2"


async def test_an_async_stack_limits_async_views_without_a_thread(global_limit: None) -> None:
    client = AsyncClient()
    codes = [(await client.get("/aplain")).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]


def test_the_middleware_in_async_mode_has_an_async_process_view() -> None:
    async def inner(request: Any) -> HttpResponse:
        return HttpResponse()

    middleware = RateLimitMiddleware(inner)
    assert middleware.process_view == middleware._aprocess_view
    sync = RateLimitMiddleware(plain)
    assert sync.process_view == sync._process_view


def test_an_async_view_refunds_what_its_outcome_does_not_count(global_limit: None) -> None:
    client = Client()
    statuses = ["500", "500", "200", "200"]
    got = [remaining(client.get("/aflaky", headers={"X-Status": s})) for s in statuses]
    assert got == ["4", "4", "4", "3"]


@pytest.mark.django_db
def test_the_admin_shows_each_bucket_s_tier(
    settings: Any, ratelimit: Any, slow_policies: Any
) -> None:
    settings.ROOT_URLCONF = __name__
    tiers = {
        "free": {"capacity": 2, "refill_rate": 1e-6},
        "pro": {"capacity": 9, "refill_rate": 1e-6},
    }
    ratelimit(POLICIES={**slow_policies, "tiered": {"tiers": tiers, "tier": f"{__name__}.plan"}})
    client = Client()
    client.get("/tiered", headers={"X-Plan": "pro"})
    client.get("/tiered")
    staff = Client()
    staff.force_login(get_user_model().objects.create_superuser("boss", password="x"))
    page = staff.get("/admin/ratelimit_app/bucket/")
    rows = {(row.policy, row.tier, row.capacity) for row in page.context["rows"]}
    assert rows == {("tiered", "pro", 9.0), ("tiered", "free", 2.0)}
    assert b'class="rl-tier">tier pro' in page.content
    pro = next(r.key for r in page.context["rows"] if r.tier == "pro")
    act = staff.post("/admin/ratelimit_app/bucket/act/", {"key": pro, "action": "reset"})
    assert act.status_code == 302
    assert client.get("/tiered", headers={"X-Plan": "pro"}).headers["X-RateLimit-Remaining"] == "8"
