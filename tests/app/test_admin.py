"""The admin page of bucket state: permissions, live data people can act on, bad input."""

from __future__ import annotations

import pickle
from io import StringIO
from typing import Any

import pytest
import redis
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client

from ratelimit_app.conf import get_runtime
from ratelimit_app.core.keys import log_identity

URL = "/admin/ratelimit_app/bucket/"
ACT = URL + "act/"
pytestmark = pytest.mark.django_db


@pytest.fixture
def policies(slow_policies: Any) -> Any:  # from tests/app/conftest.py
    return slow_policies


def staff_with(django_user_model: Any, name: str, *perms: str) -> Client:
    user = django_user_model.objects.create_user(name, password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=perms))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff(django_user_model: Any) -> Client:
    return staff_with(django_user_model, "operator", "view_bucket", "change_bucket")


def exhaust(path: str = "/api/ping", times: int = 5) -> Client:
    anonymous = Client()
    for _ in range(times):
        anonymous.get(path)
    return anonymous


def test_anonymous_is_sent_to_the_login_page(client: Client, ratelimit: Any) -> None:
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert client.post(ACT, {"key": "x"}).status_code == 302


def test_non_staff_users_are_refused(client, ratelimit, django_user_model) -> None:
    client.force_login(django_user_model.objects.create_user("pleb", password="pw"))
    assert client.get(URL).status_code == 302
    assert client.get("/admin/").status_code == 302


def test_staff_without_permissions_can_neither_view_nor_act(ratelimit, django_user_model) -> None:
    exhaust()
    bare = staff_with(django_user_model, "bare")
    assert bare.get(URL).status_code == 403
    key = get_runtime().limiter("default").keys_for("ip:127.0.0.1")[0]
    assert bare.post(ACT, {"key": key, "action": "reset"}).status_code == 403
    assert get_runtime().store.get_state(key) is not None  # nothing was reset
    assert b"Rate-limit buckets" not in bare.get("/admin/").content


def test_view_permission_shows_the_page_without_actions(ratelimit, django_user_model) -> None:
    exhaust()
    viewer = staff_with(django_user_model, "viewer", "view_bucket")
    page = viewer.get(URL)
    assert page.status_code == 200 and len(page.context["rows"]) == 1
    assert b"action-reset" not in page.content
    key = page.context["rows"][0].key
    assert viewer.post(ACT, {"key": key, "action": "drain"}).status_code == 403


def test_admin_index_links_to_the_bucket_page(staff: Client, ratelimit: Any) -> None:
    index = staff.get("/admin/")
    assert index.status_code == 200
    assert URL.encode() in index.content and b"Rate-limit buckets" in index.content


@pytest.mark.parametrize("backend", ["locmem", "django-redis", "redis-cache"])
def test_a_bucket_made_by_a_request_with_bar_user_and_state(staff, ratelimit, backend) -> None:
    ratelimit(CACHE=backend)
    staff.post("/api/upload")  # a logged-in user: charged as user:<pk>
    response = staff.get(URL)
    assert response.status_code == 200
    templates = [t.name for t in response.templates]
    assert "admin/ratelimit_app/buckets.html" in templates and "admin/base_site.html" in templates
    user = response.context["user"]
    ((row, shown),) = response.context["entries"]
    assert (row.identity, row.policy, row.stored) == (f"user:{user.pk}", "upload", True)
    assert row.tokens == pytest.approx(2.0, abs=1e-3) and row.fill == 40
    assert row.seconds_to_full == pytest.approx(3e6, rel=1e-3)
    assert row.refused is True  # 2 tokens left, the policy costs 3
    assert 0 <= row.age < 600 and row.last_seen is not None
    assert shown == ("operator", f"/admin/auth/user/{user.pk}/change/")
    content = response.content.decode()
    assert 'style="width: 40%"' in content and "refused" in content
    assert "1</strong> live bucket; every other identity is full" in content
    assert ("only the buckets of the one process" in content) == (backend == "locmem")


def test_search_by_identity_and_by_log_digest(staff: Client, ratelimit: Any) -> None:
    exhaust()
    found = staff.get(URL, {"q": "ip:127.0.0.1"})
    rows = {row.policy: row for row in found.context["rows"]}
    assert rows["default"].tokens == pytest.approx(0.0, abs=1e-3) and rows["default"].stored
    assert rows["upload"].tokens == 5.0 and not rows["upload"].stored
    digest = log_identity("ip:127.0.0.1")
    by_digest = staff.get(URL, {"q": digest}).context["rows"]
    assert [(r.identity, r.policy) for r in by_digest] == [("ip:127.0.0.1", "default")]
    assert staff.get(URL, {"q": "0" * 12}).context["rows"] == []


def test_reset_grant_and_drain_take_effect(staff: Client, ratelimit: Any) -> None:
    anonymous = exhaust()
    assert anonymous.get("/api/ping").status_code == 429
    key = get_runtime().limiter("default").keys_for("ip:127.0.0.1")[0]
    granted = staff.post(ACT, {"key": key, "action": "grant", "amount": "2", "q": "x"})
    assert granted.status_code == 302 and granted["Location"].endswith("?q=x")
    assert [anonymous.get("/api/ping").status_code for _ in range(3)] == [200, 200, 429]
    page = staff.post(ACT, {"key": key, "action": "reset"}, follow=True)
    assert b"it is full again" in page.content
    assert get_runtime().store.get_state(key) is None
    page = staff.post(ACT, {"key": key, "action": "drain"}, follow=True)
    assert b"Drained ip:127.0.0.1" in page.content
    assert anonymous.get("/api/ping").status_code == 429


@pytest.mark.parametrize("amount", ["-1", "0", "1e400", "nan", "inf", "abc", "", "1e3e3"])
def test_bad_grant_amounts_are_refused_with_a_message(staff, ratelimit, amount: str) -> None:
    exhaust()
    key = get_runtime().limiter("default").keys_for("ip:127.0.0.1")[0]
    page = staff.post(ACT, {"key": key, "action": "grant", "amount": amount}, follow=True)
    assert page.status_code == 200 and b"Nothing done" in page.content
    assert get_runtime().store.get_state(key).tokens == pytest.approx(0.0, abs=1e-3)


def test_a_huge_grant_is_capped_at_capacity(staff: Client, ratelimit: Any) -> None:
    exhaust()
    key = get_runtime().limiter("default").keys_for("ip:127.0.0.1")[0]
    page = staff.post(ACT, {"key": key, "action": "grant", "amount": "1e300"}, follow=True)
    assert b"now 5." in page.content


@pytest.mark.parametrize(
    "params",
    [{"p": "abc"}, {"p": "-1"}, {"p": "99999999999999999999999"}, {"p": "nan"},
     {"sort": "password"}, {"sort": ""}, {"policy": "nope"}, {"q": "x" * 5000}],
)  # fmt: skip
def test_bad_listing_parameters_fall_back(staff: Client, ratelimit: Any, params) -> None:
    exhaust()
    response = staff.get(URL, params)
    assert response.status_code == 200


def test_unknown_action_and_foreign_key_are_refused(staff: Client, ratelimit: Any) -> None:
    for data in ({"key": "other-prefix:default:someone", "action": "reset"},
                 {"key": "x", "action": "explode"}):  # fmt: skip
        assert b"Nothing done" in staff.post(ACT, data, follow=True).content


@pytest.mark.parametrize("query", ["*", "?", "[a-z]*", "ip:*", "\\*"])
def test_glob_characters_never_become_a_scan_pattern(staff, ratelimit, query: str) -> None:
    ratelimit(CACHE="django-redis")
    exhaust()
    rows = staff.get(URL, {"q": query}).context["rows"]
    assert all(not row.stored and row.identity == query for row in rows)


def test_html_in_identities_and_queries_is_escaped(staff: Client, ratelimit: Any) -> None:
    query = '<img src=x onerror="alert(1)">'
    content = staff.get(URL, {"q": query}).content
    assert query.encode() not in content and b"&lt;img src=x" in content


def test_foreign_values_under_the_prefix_are_skipped(
    staff: Client, ratelimit: Any, redis_url: str, key_prefix: str
) -> None:
    ratelimit(CACHE="django-redis")
    exhaust()
    raw = redis.Redis.from_url(redis_url)
    try:
        raw.set(f"{key_prefix}:1:throttle_user_1", pickle.dumps([1.0, 2.0]))  # DRF's history
        raw.set(f"{key_prefix}:default:planted", "not a bucket")
        raw.set(f"{key_prefix}:default:binary", b"\xff\xfe")
        response = staff.get(URL)
    finally:
        raw.close()
    assert response.status_code == 200
    assert [row.identity for row in response.context["rows"]] == ["ip:127.0.0.1"]
    searched = staff.get(URL, {"q": "planted"})
    assert searched.status_code == 200
    assert [row.policy for row in searched.context["rows"]] == ["upload"]  # default: skipped
    out = StringIO()
    call_command("ratelimit", "list", stdout=out)
    assert "1 live bucket(s)" in out.getvalue()


def test_pagination_and_sorting(staff: Client, ratelimit: Any) -> None:
    ratelimit(CACHE="django-redis")
    limiter = get_runtime().limiter("default")
    for i in range(55):
        limiter.allow_request(f"ip:10.0.0.{i}", 1 + i % 5)
    first = staff.get(URL, {"sort": "tokens"})
    assert first.context["page"].paginator.num_pages == 2
    tokens = [row.tokens for row in first.context["rows"]]
    assert tokens == sorted(tokens) and tokens[0] == pytest.approx(0, abs=1e-3)
    second = staff.get(URL, {"sort": "-tokens", "p": "2"}).context["rows"]
    assert len(second) == 5 and all(r.tokens == pytest.approx(0, abs=1e-3) for r in second)
    newest = staff.get(URL, {"sort": "last_seen"}).context["rows"]
    assert newest[0].age <= newest[-1].age
    filtered = staff.get(URL, {"policy": "upload"})
    assert (
        filtered.context["rows"] == [] and b"every identity searched is full" in filtered.content
    )


@pytest.mark.parametrize("backend", ["locmem", "django-redis"])
def test_a_composite_policy_shows_one_row_per_bucket_and_acts_on_all(
    staff: Client, ratelimit: Any, backend: str
) -> None:
    burst = {"capacity": 5, "refill_rate": 1e-6}
    daily = {"capacity": 3, "refill_rate": 1e-6}
    ratelimit(CACHE=backend, POLICIES={"default": {"buckets": [burst, daily]}})
    anonymous = Client()
    assert [anonymous.get("/api/ping").status_code for _ in range(4)] == [200, 200, 200, 429]
    listed = staff.get(URL, {"sort": "key"}).context["rows"]
    assert [(r.identity, r.policy, r.capacity, r.bucket, r.buckets) for r in listed] == [
        ("ip:127.0.0.1", "default", 5.0, 0, 2),
        ("ip:127.0.0.1", "default", 3.0, 1, 2),
    ]
    assert [r.tokens for r in listed] == pytest.approx([2.0, 0.0], abs=1e-3)
    found = staff.get(URL, {"q": "ip:127.0.0.1"}).context["rows"]
    assert [r.key for r in found] == [r.key for r in listed]
    staff.post(ACT, {"key": listed[1].key, "action": "grant", "amount": "1"})
    assert [anonymous.get("/api/ping").status_code for _ in range(2)] == [200, 429]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.04, "0.0 s"), (42.46, "42.5 s"), (2000, "33 min 20 s"), (5000, "1 h 23 min"),
     (18_720, "5 h 12 min"), (1e6, "11 d 13 h")],
)  # fmt: skip
def test_durations_read_at_a_glance(seconds: float, text: str) -> None:
    from ratelimit_app.inspection import duration

    assert duration(seconds) == text


def test_a_store_url_is_listed_without_its_password(
    staff: Client, ratelimit: Any, secret_redis: Any, key_prefix: str
) -> None:
    ratelimit(CACHE=None, STORE=f"redis://:hunter2@127.0.0.1:{secret_redis.port}/0")
    staff.post("/api/upload")
    page = staff.get(URL).content.decode()
    assert f"redis://:***@127.0.0.1:{secret_redis.port}/0" in page and "hunter2" not in page
    assert f"{key_prefix}:upload:user:" in page
    key = get_runtime().limiters["upload"].key_for("user:1")
    assert staff.post(ACT, {"key": key, "action": "reset"}).status_code == 302


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
    assert staff.post(ACT, {"key": key[0], "action": "reset"}).status_code == 302
    assert staff.post("/api/upload").status_code == 200  # full again
