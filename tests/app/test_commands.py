"""``manage.py ratelimit list | show | reset`` over the same data as the admin page."""

from __future__ import annotations

import re
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client


@pytest.fixture
def policies() -> dict[str, dict[str, float]]:
    return {"default": {"capacity": 5, "refill_rate": 1e-6},
            "upload": {"capacity": 5, "refill_rate": 1e-6, "cost": 3}}  # fmt: skip


def run(*args: str) -> str:
    out = StringIO()
    call_command("ratelimit", *args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("backend", ["django-redis", "redis-cache"])
def test_list_show_reset(client: Client, ratelimit: Any, key_prefix: str, backend) -> None:
    ratelimit(CACHE=backend)
    client.post("/api/upload")
    client.get("/api/ping")
    listing = run("list")
    assert f"cache {backend} ({backend})" in listing
    assert "upload\tenforce\t5\t1e-06\t3" in listing
    assert "2 live bucket(s); every other identity is full" in listing
    # tokens now (refill applied), capacity, seconds until full, state, key
    row = (
        rf"ip:127\.0\.0\.1\tupload\t2\t5\t299999\d\.?\d*\trefused\t"
        rf"{key_prefix}:upload:ip:127\.0\.0\.1"
    )
    assert re.search(row, listing)
    shown = run("show", "ip:127.0.0.1")
    assert re.search(r"ip:127\.0\.0\.1\tdefault\t4\t5\t99999\d\.?\d*\tadmitted\t", shown)
    reset = run("reset", "ip:127.0.0.1", "--policy", "upload")
    assert reset == "Reset ip:127.0.0.1 in policy upload: it is full again.\n"
    after = run("show", "ip:127.0.0.1")
    assert "ip:127.0.0.1\tupload\t5\t5\t0\tadmitted\t" in after and "(not stored)" in after
    assert "ip:127.0.0.1\tdefault\t4\t" in after
    assert run("reset", "ip:127.0.0.1").count("it is full again") == 2
    assert "0 live bucket(s)" in run("list")


def test_grant_and_drain_match_the_admin_actions(client: Client, ratelimit: Any) -> None:
    ratelimit(CACHE="django-redis")
    for _ in range(5):
        client.get("/api/ping")
    assert "to ip:127.0.0.1 in policy default: now 2" in run(
        "grant", "ip:127.0.0.1", "2", "--policy", "default"
    )
    assert [client.get("/api/ping").status_code for _ in range(3)] == [200, 200, 429]
    drained = run("drain", "ip:127.0.0.1")
    assert drained.count("Drained ip:127.0.0.1") == 2  # every policy
    assert client.post("/api/upload").status_code == 429
    for bad in ("-1", "nan", "lots"):
        with pytest.raises(CommandError, match="tokens to grant"):
            run("grant", "ip:127.0.0.1", bad)


def test_locmem_says_it_cannot_see_the_server_and_refuses_to_act(
    client: Client, ratelimit: Any
) -> None:
    client.get("/api/ping")
    err = StringIO()
    call_command("ratelimit", "list", stdout=StringIO(), stderr=err)
    assert "cannot see or change them" in err.getvalue()
    for action in (["reset", "ip:127.0.0.1"], ["grant", "ip:127.0.0.1", "1"], ["drain", "x"]):
        with pytest.raises(CommandError, match="must run inside the server process"):
            call_command("ratelimit", *action, stdout=StringIO(), stderr=StringIO())


def test_unknown_policy_is_a_command_error(ratelimit: Any) -> None:
    with pytest.raises(CommandError, match="unknown rate-limit policy 'nope'"):
        run("reset", "ip:1.2.3.4", "--policy", "nope")


def test_store_outage_is_a_command_error(ratelimit: Any, settings: Any) -> None:
    from ratelimit_app.testing import free_port

    settings.CACHES = {
        **settings.CACHES,
        "down": {"BACKEND": "django_redis.cache.RedisCache",
                 "LOCATION": f"redis://127.0.0.1:{free_port()}/0"},
    }  # fmt: skip
    ratelimit(CACHE="down")
    with pytest.raises(CommandError, match="redis"):
        run("list")


def test_the_command_works_on_a_store_url(
    client: Client, ratelimit: Any, secret_redis: Any, key_prefix: str
) -> None:
    ratelimit(CACHE=None, STORE=f"redis://:hunter2@127.0.0.1:{secret_redis.port}/1")
    client.get("/api/ping")
    listing = run("list")
    assert f"store redis://:***@127.0.0.1:{secret_redis.port}/1 (redis)" in listing
    assert "hunter2" not in listing and f"{key_prefix}:default:ip:127.0.0.1" in listing
    assert "Reset ip:127.0.0.1 in policy default: it is full again." in run(
        "reset", "ip:127.0.0.1"
    )
