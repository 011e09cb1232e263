"""The README's commands, read as a new user reads them: ``python3`` everywhere, each demo
on its own port (the same as in the code and in Compose), uvicorn never rewriting the
client address."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from project import flask_app

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text("utf-8")
BLOCKS = re.findall(r"```(?:bash|console)\n(.*?)```", README, re.S)
# commands also appear inline in tables: `python3 project/flask_app.py`
COMMANDS = [
    line.removeprefix("$ ").strip()
    for block in BLOCKS
    for line in block.splitlines()
    if line.strip() and not line.startswith(("HTTP/", "{", "X-", "Rate", "Retry", "Content"))
] + re.findall(r"`((?:python3?|gunicorn|uvicorn) [^`]+)`", README)
PORTS = {"django": 8000, "flask": 8001, "fastapi": 8002}


def test_every_command_runs_python3() -> None:
    for command in COMMANDS:
        words = [word for word in command.split() if not re.match(r"[A-Z_]+=", word)]
        for bare in ("python", "pip", "gunicorn", "uvicorn"):
            assert bare not in words[:1], command
        assert not re.search(r"(^|[\s=;&|])python(\s|$)", command), command


def test_each_demo_has_its_own_port_everywhere() -> None:
    flask = [c for c in COMMANDS if "flask_app" in c]
    fastapi = [c for c in COMMANDS if "fastapi_app" in c]
    assert flask and fastapi
    assert all("--port" not in c or "--port 8001" in c for c in flask if "gunicorn" not in c)
    assert all(":8001" in c for c in flask if "gunicorn" in c)
    assert all("--port 8002" in c for c in fastapi)
    assert flask_app.PORT == PORTS["flask"]
    assert "`python3 manage.py runserver`" in README  # Django's default, 8000
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))["services"]
    for name, port in PORTS.items():
        assert services[name]["ports"] == [f"{port}:{port}"]
    assert len(set(PORTS.values())) == len(PORTS)


def test_every_uvicorn_command_keeps_the_client_address() -> None:
    uvicorn = [c for c in COMMANDS if "uvicorn project" in c]
    assert uvicorn
    assert all("--no-proxy-headers" in c for c in uvicorn)
