"""The wheel as a user gets it: built from a copy of the checkout, installed with its
extras into a fresh virtualenv outside the repository, and used from there.

``tests/wheel_user/use_installed.py`` makes a decision on Redis (the Lua script is
package data), renders the admin's bucket page (templates), and serves a request through
``ratelimit_app.adapters.flask`` and ``.fastapi`` (the import paths the README gives);
``mypy --strict`` accepts a user's module and catches a user's type error (py.typed).
The ``demo`` extra is what a checkout's demos need (``pip install .[demo]``): with only
it installed, the servers the README names run and the demos import and check clean.
Packages come from the machine's configured index, as for any user.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
USER_FILES = Path(__file__).resolve().parent / "wheel_user"
IGNORED = shutil.ignore_patterns(
    ".git", "build", "dist", "*.egg-info", "__pycache__", "*.sqlite3", ".*_cache", ".venv"
)


def _run(argv: list[str], cwd: Path, timeout: float = 600) -> str:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{argv}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A copy of the checkout (building writes build/ beside the sources), and a fresh
    virtualenv's Python with the wheel, its demo extra, and what the user files run."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=IGNORED)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp), "."], source)
    (wheel,) = tmp.glob("ratelimit_app-*.whl")
    _run([sys.executable, "-m", "venv", str(tmp / "venv")], tmp)
    python = tmp / "venv" / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", f"{wheel}[demo]", "httpx", "mypy"], tmp)
    return source, python


@pytest.fixture
def venv_python(built: tuple[Path, Path]) -> Path:
    return built[1]


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    """The user's own folder, outside the repository: nothing of the checkout is on the
    path there."""
    shutil.copytree(USER_FILES, tmp_path, dirs_exist_ok=True)
    assert ROOT not in tmp_path.parents
    return tmp_path


@pytest.mark.slow
def test_the_installed_wheel_decides_renders_and_serves(
    venv_python: Path, user_dir: Path, redis_url: str, key_prefix: str
) -> None:
    out = _run([str(venv_python), "use_installed.py", redis_url, key_prefix], user_dir, 120)
    assert "site-packages" in out
    for step in ("redis decision", "admin page", "flask", "fastapi on redis"):
        assert step in out, out


@pytest.mark.slow
def test_mypy_strict_sees_the_installed_types(venv_python: Path, user_dir: Path) -> None:
    mypy = [str(venv_python), "-m", "mypy", "--strict"]  # the second run reuses the cache
    _run([*mypy, "typed_ok.py"], user_dir, 300)
    wrong = subprocess.run(
        [*mypy, "typed_wrong.py"], cwd=user_dir, capture_output=True, text=True, timeout=300
    )
    assert wrong.returncode == 1, wrong.stdout
    assert 'expression has type "Decision", variable has type "str"' in wrong.stdout


@pytest.mark.slow
def test_the_demo_extra_runs_the_demos(built: tuple[Path, Path], tmp_path: Path) -> None:
    source, python = built
    bin_dir = python.parent
    assert "uvicorn" in _run([str(bin_dir / "uvicorn"), "--version"], tmp_path)
    assert "gunicorn" in _run([str(bin_dir / "gunicorn"), "--version"], tmp_path)
    _run([str(python), "-c", "import httptools, uvloop"], tmp_path)  # uvicorn[standard]
    demos = "import project.fastapi_app, project.flask_app, project.wsgi"
    env = {"DJANGO_DB_PATH": str(tmp_path / "db.sqlite3"), "PATH": str(bin_dir)}
    for argv in ([str(python), "-c", demos], [str(python), "manage.py", "check"]):
        result = subprocess.run(argv, cwd=source, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
