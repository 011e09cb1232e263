"""The admin page of bucket state: staff only, real admin chrome, live data, reset."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from ratelimit_app.conf import get_runtime

URL = "/admin/ratelimit_app/bucket/"
RESET = URL + "reset/"
pytestmark = pytest.mark.django_db


@pytest.fixture
def slow_policies() -> dict[str, dict[str, float]]:
    """Refill slow enough that token counts are exact while the test runs."""
    return {"default": {"capacity": 5, "refill_rate": 1e-6},
            "upload": {"capacity": 5, "refill_rate": 1e-6, "cost": 3}}  # fmt: skip


@pytest.fixture
def policies(slow_policies: Any) -> Any:
    return slow_policies


@pytest.fixture
def staff(client: Client, django_user_model: Any) -> Client:
    user = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(user)
    return client


def test_anonymous_is_sent_to_the_login_page(client: Client, ratelimit: Any) -> None:
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert client.post(RESET, {"key": "x"}).status_code == 302


def test_non_staff_users_are_refused(client, ratelimit, django_user_model) -> None:
    client.force_login(django_user_model.objects.create_user("pleb", password="pw"))
    assert client.get(URL).status_code == 302
    assert client.get("/admin/").status_code == 302


def test_admin_index_links_to_the_bucket_page(staff: Client, ratelimit: Any) -> None:
    index = staff.get("/admin/")
    assert index.status_code == 200
    assert URL.encode() in index.content and b"Rate-limit buckets" in index.content


@pytest.mark.parametrize("backend", ["locmem", "django-redis", "redis-cache"])
def test_staff_sees_a_bucket_made_by_a_request(staff, ratelimit, backend: str) -> None:
    ratelimit(CACHE=backend)
    staff.post("/api/upload")  # a logged-in user: charged as user:<pk>
    response = staff.get(URL)
    assert response.status_code == 200
    templates = [t.name for t in response.templates]
    assert "admin/ratelimit_app/buckets.html" in templates and "admin/base_site.html" in templates
    assert (
        b'class="breadcrumbs"' in response.content and b"csrfmiddlewaretoken" in response.content
    )
    user_pk = response.context["user"].pk
    (row,) = response.context["rows"]
    assert (row.identity, row.policy, row.stored) == (f"user:{user_pk}", "upload", True)
    assert row.tokens == pytest.approx(2.0, abs=1e-3)
    assert row.seconds_to_full == pytest.approx(3e6, rel=1e-3)
    policies = {p.name: p for p in response.context["policies"]}
    assert (policies["upload"].capacity, policies["upload"].cost) == (5.0, 3.0)


def test_search_one_identity_and_reset_it(staff: Client, ratelimit: Any, client) -> None:
    anonymous = Client()
    for _ in range(5):
        anonymous.get("/api/ping")
    assert anonymous.get("/api/ping").status_code == 429
    found = staff.get(URL, {"q": "ip:127.0.0.1"})
    rows = {row.policy: row for row in found.context["rows"]}
    assert rows["default"].tokens == pytest.approx(0.0, abs=1e-3) and rows["default"].stored
    assert rows["upload"].tokens == 5.0 and not rows["upload"].stored
    response = staff.post(RESET, {"key": rows["default"].key, "q": "ip:127.0.0.1"})
    assert response.status_code == 302 and response["Location"].endswith("?q=ip%3A127.0.0.1")
    assert get_runtime().store.get_state(rows["default"].key) is None
    assert anonymous.get("/api/ping").status_code == 200


def test_reset_needs_csrf_and_post(ratelimit: Any, django_user_model: Any) -> None:
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(django_user_model.objects.create_user("s2", password="p", is_staff=True))
    assert strict.post(RESET, {"key": "anything"}).status_code == 403
    assert strict.get(RESET).status_code == 405


def test_reset_of_a_foreign_key_is_refused(staff: Client, ratelimit: Any) -> None:
    response = staff.post(RESET, {"key": "other-prefix:default:someone"}, follow=True)
    assert b"Not reset" in response.content


@pytest.mark.parametrize("backend", ["locmem", "django-redis"])
def test_a_composite_policy_shows_one_row_per_bucket_and_resets_them(
    staff: Client, ratelimit: Any, backend: str
) -> None:
    burst = {"capacity": 5, "refill_rate": 1e-6}
    daily = {"capacity": 3, "refill_rate": 1e-6}
    ratelimit(CACHE=backend, POLICIES={"default": {"buckets": [burst, daily]}})
    anonymous = Client()
    assert [anonymous.get("/api/ping").status_code for _ in range(4)] == [200, 200, 200, 429]
    listed = staff.get(URL).context["rows"]
    assert [(r.identity, r.policy, r.capacity) for r in listed] == [
        ("ip:127.0.0.1", "default", 5.0),
        ("ip:127.0.0.1", "default", 3.0),
    ]
    assert [r.tokens for r in listed] == pytest.approx([2.0, 0.0], abs=1e-3)
    found = staff.get(URL, {"q": "ip:127.0.0.1"}).context["rows"]
    assert [r.key for r in found] == [r.key for r in listed]
    staff.post(RESET, {"key": listed[1].key})
    assert anonymous.get("/api/ping").status_code == 200  # the daily bucket is full again


def test_a_store_url_is_listed_without_its_password(
    staff: Client, ratelimit: Any, secret_redis: Any, key_prefix: str
) -> None:
    ratelimit(CACHE=None, STORE=f"redis://:hunter2@127.0.0.1:{secret_redis.port}/0")
    staff.post("/api/upload")
    page = staff.get(URL).content.decode()
    assert f"redis://:***@127.0.0.1:{secret_redis.port}/0" in page and "hunter2" not in page
    assert f"{key_prefix}:upload:user:" in page
    key = get_runtime().limiters["upload"].key_for("user:1")
    assert staff.post(RESET, {"key": key}).status_code == 302


@pytest.mark.parametrize("kind", ["sentinel", "cluster"])
def test_the_admin_serves_a_sentinel_or_cluster_named_by_url(
    staff: Client, ratelimit: Any, request: pytest.FixtureRequest, kind: str, key_prefix: str
) -> None:
    """``RATELIMIT['STORE']`` alone (no cache): requests are limited, the admin lists the
    live buckets (SCAN over every master of a cluster) and resets one."""
    if kind == "sentinel":
        url = request.getfixturevalue("sentinel_group").url
    else:
        url = request.getfixturevalue("redis_cluster").cluster_url
    ratelimit(CACHE=None, STORE=url)
    assert [staff.post("/api/upload").status_code for _ in range(2)] == [200, 429]
    page = staff.get(URL).content.decode()
    assert f"({kind})" in page and f"{key_prefix}:upload:user:" in page
    (key,) = get_runtime().store.scan(f"{key_prefix}:upload:")
    assert staff.post(RESET, {"key": key[0]}).status_code == 302
    assert staff.post("/api/upload").status_code == 200  # full again
