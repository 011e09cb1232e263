"""The Django demo project's own settings, checked in a fresh interpreter.

The app's tests run with ``tests.settings``; here ``manage.py check`` runs as a
subprocess with ``DJANGO_SETTINGS_MODULE`` set to the demo's ``project.settings``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_settings_are_clean(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DJANGO_DB_PATH": str(tmp_path / "db.sqlite3"),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no issues" in result.stdout
    assert "ratelimit." not in result.stdout + result.stderr
