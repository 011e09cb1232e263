"""``poetry install --all-extras`` on a copy of the checkout gives a working demo: the
servers the README names are commands in Poetry's environment (``poetry run uvicorn``
was "Command not found" before the demo extra), and the demos import and check clean.

Poetry itself is installed into a virtualenv of its own, from the machine's configured
index, as a user would; its environment for the project is kept inside the copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_wheel import IGNORED, ROOT


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    result = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{argv}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.slow
def test_poetry_install_all_extras_gives_a_working_demo(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE")  # pytest-django's, not ours
    }
    env |= {"POETRY_VIRTUALENVS_IN_PROJECT": "true", "DJANGO_DB_PATH": str(tmp_path / "db")}
    _run([sys.executable, "-m", "venv", str(tmp_path / "tool")], tmp_path, env)
    _run([str(tmp_path / "tool/bin/python"), "-m", "pip", "install", "-q", "poetry"],
         tmp_path, env)  # fmt: skip
    poetry = str(tmp_path / "tool/bin/poetry")
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=IGNORED)
    _run([poetry, "install", "--all-extras", "--no-interaction"], project, env)
    assert "uvicorn" in _run([poetry, "run", "uvicorn", "--version"], project, env)
    assert "gunicorn" in _run([poetry, "run", "gunicorn", "--version"], project, env)
    demos = "import httptools, uvloop, project.fastapi_app, project.flask_app, project.wsgi"
    _run([poetry, "run", "python3", "-c", demos], project, env)
    assert "no issues" in _run([poetry, "run", "python3", "manage.py", "check"], project, env)
