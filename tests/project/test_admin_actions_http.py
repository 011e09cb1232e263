"""Operator actions reach every worker: gunicorn x4 on one Redis, over HTTP.

Each worker remembers denials (flood shedding). An action taken outside a worker (the
management command, or the admin served by another worker) must not be undone by that
memory. Memory is trusted for ``DenialCache.max_age`` at most, so after the action and
that wait every worker asks Redis again, and a burst admits exactly what the action
gave: the capacity after a reset, 2 after granting 2, none after a drain. The command
runs in a process of its own, so no worker has heard of the action: without the bound
all four would keep refusing locally and admit nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from project.servers import ROOT, DemoServer, burst, get, migrate_demo
from ratelimit_app.core.shedding import DenialCache

CAPACITY = 5
SHED_MEMORY = DenialCache().max_age


def admin_session(port: int, name: str) -> httpx.Client:
    """A logged-in admin session (the login form, with its CSRF cookie)."""
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    client.get("/admin/login/")
    form = {"username": name, "password": name, "next": "/admin/",
            "csrfmiddlewaretoken": client.cookies["csrftoken"]}  # fmt: skip
    assert client.post("/admin/login/", data=form).status_code == 302
    return client


def admin_act(admin: httpx.Client, action: str, key: str) -> str:
    data = {"action": action, "key": key, "csrfmiddlewaretoken": admin.cookies["csrftoken"]}
    response = admin.post("/admin/ratelimit_app/bucket/act/", data=data)
    assert response.status_code == 302
    return admin.get(response.headers["location"]).text


def command(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", "ratelimit", *args, "--policy", "default"],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def admitted_after_wait(port: int) -> int:
    time.sleep(SHED_MEMORY + 0.2)  # the documented bound, not a timing assertion
    return burst(port, "/api/ping", 200, 25)[200]


@pytest.mark.slow
def test_reset_grant_and_drain_are_seen_by_all_four_workers(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    env = {
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "REDIS_URL": redis_url,
        "RATELIMIT_CAPACITY": str(CAPACITY),
        "RATELIMIT_REFILL_RATE": "1e-6",
        "RATELIMIT_KEY_PREFIX": key_prefix,
        "DJANGO_DB_PATH": str(tmp_path / "db.sqlite3"),
    }
    migrate_demo(env, {"root": True})
    steps = [(("reset",), CAPACITY), (("grant", "ip:127.0.0.1", "2"), 2), (("drain",), 0)]
    with DemoServer(env, workers=4) as server:
        assert get(server.port, "/static/admin/css/base.css") == 200  # DEBUG off, styled
        for args, admitted in steps:
            assert burst(server.port, "/api/ping", 200, 25)[200] in (0, CAPACITY)
            assert burst(server.port, "/api/ping", 200, 25)[200] == 0  # every worker sheds
            command(env, *(args if len(args) > 1 else (*args, "ip:127.0.0.1")))
            assert admitted_after_wait(server.port) == admitted, server.output()
        with closing(admin_session(server.port, "root")) as admin:
            page = admin_act(admin, "reset", f"{key_prefix}:default:ip:127.0.0.1")
            assert "Reset ip:127.0.0.1 in policy default" in page
            assert admitted_after_wait(server.port) == CAPACITY
