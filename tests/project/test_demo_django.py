"""The Django demo as the README sets it up: clean checks, a set-up command that can run
twice, and an admin whose "View site" link leads somewhere.

The app's tests run with ``tests.settings``; here the demo runs in subprocesses with
``DJANGO_SETTINGS_MODULE`` set to the demo's ``project.settings``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from project.servers import running
from ratelimit_app.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text("utf-8")


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DJANGO_DEBUG": "1",
        "DJANGO_DB_PATH": str(tmp_path / "db.sqlite3"),
        "REDIS_URL": "",
    }


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def readme_setup_steps() -> list[list[str]]:
    """The README's first command, one argv per ``&&`` step."""
    block = re.search(r"```bash\n(.*?)```", README, re.S)
    assert block is not None
    return [shlex.split(step) for step in block.group(1).strip().split(" && ")]


@pytest.mark.slow
def test_demo_settings_are_clean(tmp_path: Path) -> None:
    result = _run([sys.executable, "manage.py", "check"], _env(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no issues" in result.stdout
    assert "ratelimit." not in result.stdout + result.stderr


@pytest.mark.slow
def test_the_readme_set_up_command_runs_twice(tmp_path: Path) -> None:
    steps = readme_setup_steps()
    assert steps[0] == ["python3", "-m", "pip", "install", "-r", "requirements.txt"]
    assert steps[-1] == ["python3", "manage.py", "runserver"]
    for _ in range(2):  # the second run finds the database and the user already there
        for step in steps[1:-1]:
            assert step[0] == "python3"
            result = _run([sys.executable, *step[1:]], _env(tmp_path))
            assert result.returncode == 0, (step, result.stderr[-3000:])
    assert "exists already" in result.stdout


@contextmanager
def served(tmp_path: Path) -> Iterator[httpx.Client]:
    """The demo after the README's set-up, under runserver, and a client of it."""
    env = _env(tmp_path)
    for step in readme_setup_steps()[1:-1]:
        assert _run([sys.executable, *step[1:]], env).returncode == 0
    port = free_port()
    command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    with running(command, env, port, tmp_path / "server.log"):
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client


@pytest.mark.slow
def test_admin_view_site_leads_to_the_demo_index(tmp_path: Path) -> None:
    with served(tmp_path) as client:
        login = client.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
        assert token is not None
        form = {"username": "demo", "password": "demo", "csrfmiddlewaretoken": token[1]}
        client.post("/admin/login/?next=/admin/", data=form)
        admin = client.get("/admin/")
        view_site = re.search(r'<a href="([^"]+)">View site</a>', admin.text)
        assert view_site is not None, admin.text[:2000]
        index = client.get(view_site[1])
        buckets = client.get("/admin/ratelimit_app/bucket/")
    assert index.status_code == 200
    for path in ("/api/ping", "/api/upload", "/plain/ping", "/plain/upload", "/healthz"):
        assert f"href='{path}'" in index.text
    assert buckets.status_code == 200


@pytest.mark.slow
def test_the_demo_refuses_password_guesses_before_checking_them(tmp_path: Path) -> None:
    """Item 8 in the demo, over HTTP: the login view and DRF's basic auth share the
    address's auth_failures bucket; once it is empty the right password waits too."""
    with served(tmp_path) as client:
        guess = {"username": "demo", "password": "guess"}
        logins = [client.post("/api/login", data=guess).status_code for _ in range(3)]
        basic = [client.get("/api/ping", auth=("demo", "guess")).status_code for _ in range(3)]
        right = client.post("/api/login", data={"username": "demo", "password": "demo"})
        ping = client.get("/api/ping")  # no credentials: not this gate
    assert logins == [401, 401, 401]
    assert basic == [403, 403, 429]
    assert right.status_code == 429 and int(right.headers["Retry-After"]) > 0
    assert ping.status_code == 200


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_every_denial_is_logged_when_uvicorn_stops_the_asgi_demo(
    tmp_path: Path, workers: int
) -> None:
    """uvicorn ends its workers by re-raising SIGTERM, so ``atexit`` never runs in them:
    the last window of repeated denials is counted by the lifespan's shutdown instead."""
    env = _env(tmp_path)
    port, log = free_port(), tmp_path / "server.log"
    command = [
        sys.executable, "-m", "uvicorn", "project.asgi:application", "--no-proxy-headers",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    with running(command, env, port, log), httpx.Client(timeout=30) as client:
        # memory store, one bucket per worker: at least 5 and at most 5 * workers pass
        codes = [client.get(f"http://127.0.0.1:{port}/api/ping").status_code for _ in range(30)]
    denied = codes.count(429)
    assert codes.count(200) + denied == 30 and denied >= 30 - 5 * workers
    text = log.read_text()
    first = text.count("outcome=denied")
    repeated = [int(n) for n in re.findall(r"identity=\S+ repeated=(\d+)", text)]
    assert 1 <= first <= workers, text
    assert first + sum(repeated) == denied, text
    assert "lifespan" not in text.lower(), text  # no "lifespan unsupported" notice
