"""Every wrong setting fails ``manage.py check`` with its own id; good settings pass clean.

(The demo project's own settings are checked in ``tests/project/test_demo_django.py``.)
"""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core import checks
from django.core.management import call_command

GOOD = {"capacity": 5, "refill_rate": 1.0}
urlpatterns: list[Any] = []  # a URLconf without limited views, for settings-only checks


def ratelimit_ids(deploy: bool = False) -> list[str]:
    found = checks.run_checks(tags=["ratelimit"], include_deployment_checks=deploy)
    return sorted(message.id for message in found if message.id.startswith("ratelimit."))


def test_the_test_settings_are_clean() -> None:
    out = StringIO()
    call_command("check", stdout=out)
    assert "no issues" in out.getvalue()
    assert ratelimit_ids() == []


def test_without_the_setting_only_the_default_policy_exists(settings: Any) -> None:
    del settings.RATELIMIT
    found = checks.run_checks(tags=["ratelimit"])
    assert [m.id for m in found] == ["ratelimit.E011", "ratelimit.E011"]
    assert all("'upload'" in m.msg for m in found)  # the two upload views of tests/urls.py


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([("POLICIES", {})], ["ratelimit.E001"]),
        ({"POLICY": {}}, ["ratelimit.E001"]),
        ({"POLICIES": []}, ["ratelimit.E002"]),
        ({"POLICIES": {"bad name": GOOD}}, ["ratelimit.E002"]),
        ({"POLICIES": {"p": {"capacity": 5}}}, ["ratelimit.E002"]),
        ({"POLICIES": {"p": {**GOOD, "burst": 1}}}, ["ratelimit.E002"]),
        ({"POLICIES": {"p": 5}}, ["ratelimit.E002"]),
        ({"POLICIES": {"p": {"capacity": 0, "refill_rate": 1}}}, ["ratelimit.E003"]),
        ({"POLICIES": {"p": {"capacity": 5, "refill_rate": float("nan")}}}, ["ratelimit.E003"]),
        ({"POLICIES": {"p": {"capacity": "5", "refill_rate": 1}}}, ["ratelimit.E003"]),
        ({"POLICIES": {"p": {**GOOD, "cost": 6}}}, ["ratelimit.E004"]),
        ({"POLICIES": {"p": {**GOOD, "cost": -1}}}, ["ratelimit.E004"]),
        ({"POLICIES": {"p": {"buckets": []}}}, ["ratelimit.E002"]),
        ({"POLICIES": {"p": {"buckets": [GOOD], "capacity": 1}}}, ["ratelimit.E002"]),
        ({"POLICIES": {"p": {"buckets": [{**GOOD, "cost": 1}]}}}, ["ratelimit.E002"]),
        (
            {"POLICIES": {"p": {"buckets": [GOOD, {"capacity": 1, "refill_rate": 0}]}}},
            ["ratelimit.E003"],
        ),
        (
            {"POLICIES": {"p": {"buckets": [GOOD, {"capacity": 2, "refill_rate": 1}], "cost": 3}}},
            ["ratelimit.E004"],
        ),
        ({"CACHE": "nowhere"}, ["ratelimit.E005"]),
        ({"CACHE": 3}, ["ratelimit.E005"]),
        ({"ON_STORE_ERROR": "ignore"}, ["ratelimit.E006"]),
        ({"TRUSTED_PROXY_COUNT": -1}, ["ratelimit.E007"]),
        ({"TRUSTED_PROXY_COUNT": "1"}, ["ratelimit.E007"]),
        ({"TRUSTED_PROXY_COUNT": 10**9}, ["ratelimit.E007"]),
        ({"TRUSTED_PROXIES": "10.0.0.0/8"}, ["ratelimit.E030"]),
        ({"TRUSTED_PROXIES": ["10.0.0.1/8"]}, ["ratelimit.E030"]),
        ({"TRUSTED_PROXIES": ["::/0"]}, ["ratelimit.E030"]),
        ({"TRUSTED_PROXIES": ["10.0.0.0/8"], "TRUSTED_PROXY_COUNT": 1}, ["ratelimit.E030"]),
        ({"PROXY_HEADER": "X-Real-IP"}, ["ratelimit.E031"]),
        ({"IPV6_PREFIX": 129}, ["ratelimit.E032"]),
        ({"IPV6_PREFIX": 8}, ["ratelimit.E032"]),
        ({"STORE": "foo://bar"}, ["ratelimit.E033"]),
        ({"STORE": "redis+cluster://h:7000/1"}, ["ratelimit.E033"]),
        ({"STORE": "redis+sentinel://h:26379"}, ["ratelimit.E033"]),
        ({"STORE": "redis://h/0", "CACHE": "default"}, ["ratelimit.E033"]),
        ({"STORE": "redis://h/0", "MAX_CONNECTIONS": 0}, ["ratelimit.E033"]),
        ({"SOCKET_TIMEOUT": 1.0}, ["ratelimit.E033"]),
        ({"KEY_PREFIX": "a:b"}, ["ratelimit.E008"]),
        ({"KEY_PREFIX": ""}, ["ratelimit.E008"]),
        ({"RETRY_INTERVAL": -1}, ["ratelimit.E009"]),
        ({"LEGACY_HEADERS": "yes"}, ["ratelimit.E010"]),
        ({"IETF_HEADERS": None}, ["ratelimit.E010"]),
        ({"MODE": "dry_run"}, ["ratelimit.E020"]),
        ({"POLICIES": {"p": {**GOOD, "mode": "off"}}}, ["ratelimit.E020"]),
        ({"METRICS": 1}, ["ratelimit.E010"]),
        ({"COALESCE": "off"}, ["ratelimit.E010"]),
        (
            {"KEY_PREFIX": "a b", "ON_STORE_ERROR": 1, "POLICIES": {"p": {**GOOD, "cost": 9}}},
            ["ratelimit.E004", "ratelimit.E006", "ratelimit.E008"],
        ),
    ],
)
def test_each_bad_setting_has_its_own_error(settings, raw: Any, expected: list[str]) -> None:
    settings.ROOT_URLCONF = __name__
    settings.RATELIMIT = raw
    assert ratelimit_ids() == expected
    messages = checks.run_checks(tags=["ratelimit"])
    assert all(m.hint and m.level == checks.ERROR for m in messages)


def test_a_composite_policy_is_clean(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__
    settings.RATELIMIT = {
        "POLICIES": {"api": {"buckets": [GOOD, {"capacity": 100, "refill_rate": 0.1}]}}
    }
    assert ratelimit_ids() == []


def test_errors_name_the_setting_and_value(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__
    settings.RATELIMIT = {"POLICIES": {"upload": {**GOOD, "cost": 7}}}
    (message,) = checks.run_checks(tags=["ratelimit"])
    assert "RATELIMIT['POLICIES']['upload']" in message.msg and "7" in message.msg


def test_views_naming_unknown_policies_or_impossible_costs(settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.app.urls_unknown_policy"
    found = checks.run_checks(tags=["ratelimit"])
    by_id = sorted((m.id, m.msg.split(" ")[0]) for m in found)
    assert by_id == [
        ("ratelimit.E004", "HeavyView"),
        ("ratelimit.E004", "too_costly"),
        ("ratelimit.E011", "GhostView"),
        ("ratelimit.E011", "unknown_policy"),
    ]
    assert any("'drf/ghost'" in m.msg and "'ghost'" in m.msg for m in found)


def test_non_atomic_cache_is_a_warning(settings: Any, bucket_caches: Any) -> None:
    settings.ROOT_URLCONF = __name__
    settings.RATELIMIT = {"CACHE": "other"}
    (message,) = checks.run_checks(tags=["ratelimit"])
    assert (message.id, message.level) == ("ratelimit.W001", checks.WARNING)
    assert "DummyCache" in message.msg


@pytest.mark.parametrize("alias", ["locmem", "django-redis", "redis-cache"])
def test_atomic_caches_pass(settings: Any, bucket_caches: Any, alias: str) -> None:
    settings.ROOT_URLCONF = __name__
    settings.RATELIMIT = {"CACHE": alias}
    assert ratelimit_ids() == []
    assert ratelimit_ids(deploy=True) == (["ratelimit.W002"] if alias == "locmem" else [])


def test_check_command_fails_on_a_bad_setting(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__
    settings.RATELIMIT = {"POLICIES": {"p": {"capacity": -5, "refill_rate": 1}}}
    from django.core.management.base import SystemCheckError

    with pytest.raises(SystemCheckError, match=r"ratelimit\.E003.*capacity must be"):
        call_command("check", stdout=StringIO(), stderr=StringIO())


def test_metrics_without_prometheus_client_is_e021(settings: Any, monkeypatch) -> None:
    import sys

    settings.ROOT_URLCONF = __name__
    settings.RATELIMIT = {"METRICS": True}
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if not installed
    assert ratelimit_ids() == ["ratelimit.E021"]
