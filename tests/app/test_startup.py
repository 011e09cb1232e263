"""A bad ``RATELIMIT`` stops Django when it starts, under every server, never a 500 later.

gunicorn and uvicorn never run system checks, so the app validates its settings when it
is ready. These tests start real servers (and ``manage.py``) in subprocesses with the
hostile settings of ``tests/hostile_settings.py`` and check that each refuses to boot
with the setting's name and its check id; each process is bounded by a timeout.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from ratelimit_app.checks import refuse_bad_settings
from ratelimit_app.testing import free_port
from tests.hostile_settings import GOOD, HOSTILE

ROOT = Path(__file__).resolve().parent.parent.parent
BOOT_TIMEOUT = 120  # seconds: generous on a loaded machine; a refusal takes about two


def start(
    command: list[str], ratelimit: Any = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` from the repository root until it exits (it must: bad settings)."""
    if ratelimit is not None:
        env = {"DJANGO_SETTINGS_MODULE": "tests.env_settings", **env}
        env["TEST_RATELIMIT"] = json.dumps(ratelimit)
    return subprocess.run(
        command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True,
        timeout=BOOT_TIMEOUT, check=False,
    )  # fmt: skip


def gunicorn(ratelimit: Any = None, **env: str) -> subprocess.CompletedProcess[str]:
    bind = f"127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "gunicorn", "project.wsgi:application", "-w", "1", "-b", bind]
    return start(command, ratelimit, **env)


@pytest.mark.parametrize(("raw", "named", "check_id"), HOSTILE)
def test_each_hostile_setting_is_refused_when_the_app_is_ready(
    settings: Any, raw: Any, named: str, check_id: str
) -> None:
    settings.RATELIMIT = raw
    with pytest.raises(ImproperlyConfigured, match=named) as info:
        refuse_bad_settings()
    assert f"(ratelimit.{check_id})" in str(info.value)
    # manage.py check reports the same problem under the same id
    found = {m.id for m in checks.run_checks(tags=["ratelimit"]) if m.is_serious()}
    assert f"ratelimit.{check_id}" in found


def test_good_settings_and_an_unknown_cache_alias(settings: Any) -> None:
    refuse_bad_settings()  # tests/settings.py is clean
    settings.RATELIMIT = {"CACHE": "nowhere"}
    with pytest.raises(ImproperlyConfigured, match=r"\(ratelimit.E005\) RATELIMIT\['CACHE'\]"):
        refuse_bad_settings()


@pytest.mark.slow
def test_gunicorn_refuses_to_boot_on_every_hostile_setting() -> None:
    """One gunicorn per row (a few at a time): each exits, naming the setting and its id."""
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda row: gunicorn(row.values[0]), HOSTILE))
    for row, run in zip(HOSTILE, runs, strict=True):
        _raw, named, check_id = row.values
        output = run.stdout + run.stderr
        assert run.returncode != 0, f"{row.id}: gunicorn served\n{output[-2000:]}"
        assert "Worker failed to boot" in output, f"{row.id}\n{output[-2000:]}"
        assert f"(ratelimit.{check_id})" in output, f"{row.id}\n{output[-2000:]}"
        assert re.search(named, output), f"{row.id}\n{output[-2000:]}"


@pytest.mark.slow
def test_django_asgi_under_uvicorn_refuses_to_boot() -> None:
    port = str(free_port())
    command = [sys.executable, "-m", "uvicorn", "project.asgi:application", "--port", port,
               "--host", "127.0.0.1", "--no-proxy-headers"]  # fmt: skip
    run = start(command, {"RETRY_INTERVAL": 1e308})
    assert run.returncode != 0
    assert "(ratelimit.E009) RATELIMIT['RETRY_INTERVAL']" in run.stdout + run.stderr


@pytest.mark.slow
def test_manage_py_check_lists_every_problem_with_its_id() -> None:
    bad = {"KEY_PREFIX": "rl\n", "RETRY_INTERVAL": -1, "POLICIES": {"p": {**GOOD, "cost": 9}}}
    run = start([sys.executable, "manage.py", "check"], bad)
    assert run.returncode != 0
    for check_id in ("E004", "E008", "E009"):
        assert f"(ratelimit.{check_id})" in run.stderr


@pytest.mark.slow
def test_the_demo_refuses_a_redis_url_that_is_not_redis() -> None:
    run = gunicorn(REDIS_URL="foo://bar", DJANGO_SETTINGS_MODULE="project.settings")
    assert run.returncode != 0
    assert "environment variable REDIS_URL: must be 'redis://host:port/db'" in run.stderr
