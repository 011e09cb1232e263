"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

Each service's command must name a module and an app object that exist (imported in a
subprocess with that service's environment, Redis pointed at the test server), every
environment variable a service sets must be one the code reads (found in the sources,
and seen read at import), and the image must be a slim Python run by a non-root user.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]
APPS = {"django": "gunicorn", "flask": "gunicorn", "fastapi": "uvicorn"}
SOURCES = ("project", "ratelimit_app", "adapters")
# os.environ.get("X"), os.environ["X"], os.getenv("X"), environ.setdefault("X", ...),
# and a mapping parameter named env: env.get("X"), helper(env, "X", ...).
ENV_READ = re.compile(r"""\b(?:environ|getenv|env)\b[^"'\n]{0,20}["']([A-Z][A-Z0-9_]*)["']""")
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")
TARGET = re.compile(r"^([A-Za-z_][\w.]*):([A-Za-z_]\w*)$")

# Runs in a fresh interpreter: record every os.environ lookup, import, find the app.
PROBE = """
import importlib, json, os, sys
seen = set()
cls = type(os.environ)
getitem, contains = cls.__getitem__, cls.__contains__
def _getitem(self, key):
    seen.add(key)
    return getitem(self, key)
def _contains(self, key):
    seen.add(key)
    return contains(self, key)
cls.__getitem__, cls.__contains__ = _getitem, _contains
module = importlib.import_module(sys.argv[1])
app = getattr(module, sys.argv[2], None)
print(json.dumps({"found": app is not None, "callable": callable(app), "read": sorted(seen)}))
"""


def env_names_in_sources() -> set[str]:
    names: set[str] = set()
    for package in SOURCES:
        for path in (ROOT / package).rglob("*.py"):
            names.update(ENV_READ.findall(path.read_text("utf-8")))
    return names


def startup_reads(service: dict[str, Any]) -> set[str]:
    """Variables read by the ``python -m project.X`` steps a service runs before its
    server (the demo admin user), found in those modules' sources."""
    steps = re.findall(r"python3? -m ([\w.]+)", " ".join(command_words(service)))
    return {
        name
        for module in steps
        for name in ENV_READ.findall((ROOT / (module.replace(".", "/") + ".py")).read_text())
    }


def command_words(service: dict[str, Any]) -> list[str]:
    """The command as words; a ``sh -c`` script is split on its own."""
    command = service["command"]
    words = shlex.split(command) if isinstance(command, str) else [str(w) for w in command]
    if words[:2] == ["sh", "-c"]:
        return shlex.split(words[2])
    return words


def server_target(words: list[str], server: str) -> tuple[str, str]:
    start = words.index(server)
    for word in words[start + 1 :]:
        match = TARGET.match(word)
        if match:
            return match.group(1), match.group(2)
    raise AssertionError(f"no module:app after {server} in {words}")


def interpolate(value: object) -> str:
    """Compose's ``${NAME:-default}``, from this process's environment."""
    return INTERPOLATION.sub(lambda m: os.environ.get(m.group(1)) or m.group(2) or "", str(value))


def service_env(name: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    """The service's environment, with the addresses that exist only inside Compose
    (the ``redis`` host, the ``/data`` volume) pointed at their test twins."""
    env = {key: interpolate(value) for key, value in SERVICES[name]["environment"].items()}
    env["REDIS_URL"] = redis_url
    if "DJANGO_DB_PATH" in env:
        env["DJANGO_DB_PATH"] = str(tmp_path / "db.sqlite3")
    return {"PATH": os.environ.get("PATH", ""), **env}


def probe(module: str, attr: str, env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, module, attr],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_redis_service_has_a_healthcheck() -> None:
    redis = SERVICES["redis"]
    assert redis["image"] == "redis:7-alpine"
    assert "ping" in " ".join(redis["healthcheck"]["test"])


@pytest.mark.parametrize("name", sorted(APPS))
def test_service_waits_for_healthy_redis_on_its_own_port(name: str) -> None:
    service = SERVICES[name]
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    assert service["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert service["build"] == "."
    (mapping,) = service["ports"]
    host, container = mapping.split(":")
    words = command_words(service)
    assert container in {w.rsplit(":", 1)[-1] for w in words}, f"{name} must listen on {container}"
    published = [SERVICES[other]["ports"][0].split(":")[0] for other in APPS]
    assert published.count(host) == 1


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(APPS))
def test_command_imports_its_app_and_every_variable_is_read(
    name: str, redis_url: str, tmp_path: Path
) -> None:
    words = command_words(SERVICES[name])
    module, attr = server_target(words, APPS[name])
    env = service_env(name, redis_url, tmp_path)
    found = probe(module, attr, env)
    assert found["found"] and found["callable"], f"{module}:{attr} is not an app object"
    set_here = set(SERVICES[name]["environment"])
    assert set_here <= env_names_in_sources(), set_here - env_names_in_sources()
    read = set(found["read"]) | startup_reads(SERVICES[name])
    assert set_here <= read, f"set but never read: {set_here - read}"


def test_fastapi_runs_several_uvicorn_workers_on_the_fast_path() -> None:
    words = command_words(SERVICES["fastapi"])
    assert int(words[words.index("--workers") + 1]) > 1
    assert words[words.index("--http") + 1] == "httptools"
    assert words[words.index("--loop") + 1] == "uvloop"
    assert "--no-proxy-headers" in words
    requirements = (ROOT / "requirements.txt").read_text("utf-8").split()
    assert any(line.startswith("uvicorn[standard]") for line in requirements)


@pytest.mark.slow
def test_django_start_up_steps_run(redis_url: str, tmp_path: Path) -> None:
    """Every step the Django service runs before ``exec gunicorn`` succeeds here."""
    script = SERVICES["django"]["command"][2]
    steps = [shlex.split(step) for step in script.split("&&")]
    assert steps[-1][:2] == ["exec", "gunicorn"]
    assert ["python3", "manage.py", "migrate", "--noinput"] in steps
    env = service_env("django", redis_url, tmp_path)
    for step in steps[:-1]:
        argv = [sys.executable, *step[1:]] if step[0] == "python3" else step
        result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "db.sqlite3").stat().st_size > 0
    with closing(sqlite3.connect(tmp_path / "db.sqlite3")) as db:
        admins = db.execute("select username from auth_user where is_superuser").fetchall()
    assert admins == [(env["DEMO_ADMIN_USERNAME"],)]  # made from the environment


def test_dockerfile_is_slim_non_root_and_installs_requirements() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text("utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    text = "\n".join(lines)
    assert re.search(r"^FROM python:3\.11[\w.]*-slim\b", text, re.M), "base must be slim Python"
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0", "0:0"}, "the image must run as non-root"
    assert "pip install -r requirements.txt" in text
    assert "COPY . ." in text
    assert text.index("pip install") < text.index(f"USER {users[-1]}")


def test_dockerfile_default_command_names_an_existing_app(tmp_path: Path) -> None:
    cmd = next(line for line in (ROOT / "Dockerfile").read_text("utf-8").splitlines()
               if line.startswith("CMD "))  # fmt: skip
    module, attr = server_target(json.loads(cmd[4:]), "gunicorn")
    env = {"PATH": os.environ.get("PATH", ""), "DJANGO_DB_PATH": str(tmp_path / "db.sqlite3")}
    assert probe(module, attr, env)["callable"]
