"""Repository-wide rules: the core stays framework-free (ruff and mypy are CI steps of
their own, in the README's test command)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS = ("django", "rest_framework", "flask", "fastapi", "starlette")


def test_core_imports_no_web_framework() -> None:
    code = (
        "import sys, ratelimit_app.core;"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
