"""Store URLs: every form parsed into what it names, every mistake refused with the
setting's name, and a password never shown."""

from __future__ import annotations

from typing import Any

import pytest

from ratelimit_app.core import ConfigError
from ratelimit_app.core.stores.from_url import parse_storage_options
from ratelimit_app.core.stores.urls import StoreURL, parse_store_url, redacted

SENTINELS = ((("10.0.0.1", 26379), ("10.0.0.2", 26380)), "mymaster")


@pytest.mark.parametrize(
    ("url", "kind", "hosts", "service", "db", "credentials"),
    [
        ("memory://", "memory", (), "", 0, {}),
        ("redis://localhost:6379/0", "redis", (), "", 0, {}),
        ("rediss://user:pw@cache.example:6380/2", "redis", (), "", 0, {}),
        ("unix:///run/redis.sock?db=1", "redis", (), "", 0, {}),
        (
            "redis+sentinel://10.0.0.1,10.0.0.2:26380/mymaster",
            "sentinel", *SENTINELS, 0, {},
        ),
        (
            "redis+sentinel://:s%40cret@10.0.0.1:26379,10.0.0.2:26380/mymaster/3",
            "sentinel", *SENTINELS, 3, {"password": "s@cret"},
        ),
        (
            "redis+sentinel://[2001:db8::1]:5000/cache.main/0",
            "sentinel", (("2001:db8::1", 5000),), "cache.main", 0, {},
        ),
        (
            "redis+cluster://app:pw@n1:7000,n2:7001,n3",
            "cluster", (("n1", 7000), ("n2", 7001), ("n3", 6379)), "", 0,
            {"username": "app", "password": "pw"},
        ),
        ("redis+cluster://n1:7000/0", "cluster", (("n1", 7000),), "", 0, {}),
    ],
)  # fmt: skip
def test_each_form_names_its_store(
    url: str, kind: str, hosts: tuple[Any, ...], service: str, db: int, credentials: Any
) -> None:
    target = parse_store_url(url)
    assert (target.kind, target.hosts, target.service, target.db) == (kind, hosts, service, db)
    assert target.credentials == credentials and target.url == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("memory", "is not a store URL"),
        ("foo://bar", "is not a store URL"),
        ("http://localhost:6379", "is not a store URL"),
        ("redis://h:bad/0", "not a valid URL"),
        ("redis://", "names no host"),
        ("redis+sentinel://h:26379", "service name"),
        ("redis+sentinel://h:26379/", "service name"),
        ("redis+sentinel://h:26379/my master/0", "service name"),
        ("redis+sentinel://h:26379/m/zero", "not a database number"),
        ("redis+sentinel://h:26379/m/0/1", "not a database number"),
        ("redis+sentinel://h:26379,/m", "not 'host:port'"),
        ("redis+sentinel://h:99999/m", "port out of range"),
        ("redis+sentinel://h:1/m?ssl=true", "query options"),
        ("redis+cluster://h:7000/1", "other than 0"),
        ("redis+cluster://h:x", "not 'host:port'"),
        ("redis+cluster://", "not 'host:port'"),
    ],
)
def test_bad_urls_are_refused_naming_the_setting(url: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as info:
        parse_storage_options({"STORAGE_URL": url}, where="RATELIMIT")
    assert str(info.value).startswith("RATELIMIT['STORAGE_URL']: ")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://app:hunter2@h/0", "redis://app:***@h/0"),
        ("redis://hunter2@h/0", "redis://***@h/0"),
        ("redis://:hun/ter?2#x@h/0", "redis://:***@h/0"),  # unescaped / ? # in a password
        ("redis+sentinel://:hunter2@a:1,b:2/m/0", "redis+sentinel://:***@a:1,b:2/m/0"),
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("memory://", "memory://"),
    ],
)
def test_a_password_is_never_shown(url: str, shown: str) -> None:
    assert redacted(url) == shown
    assert "hunter2" not in repr(StoreURL("redis", url))


@pytest.mark.parametrize(
    "url",
    [
        "redis://:hunter2@h:99999/0",
        "redis+sentinel://:hunter2@h:1",
        "redis+cluster://:hunter2@h/3",
    ],
)
def test_errors_about_a_url_do_not_show_its_password(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_store_url(url)
    assert "hunter2" not in str(info.value) and "***" in str(info.value)
