"""Reading the server's worker count, and the one warning about split memory buckets."""

from __future__ import annotations

import logging

import pytest

from ratelimit_app.core import workers
from ratelimit_app.core.workers import server_workers, warn_if_split


@pytest.mark.parametrize(
    ("argv", "count"),
    [
        (["/usr/bin/gunicorn", "-w", "4", "project.flask_app:app"], 4),
        (["/venv/lib/gunicorn/__main__.py", "--workers=3", "project.wsgi"], 3),
        (["/usr/bin/gunicorn", "project.wsgi"], 1),
        (["/venv/lib/uvicorn/__main__.py", "project.fastapi_app:app", "--workers", "2"], 2),
        (["/usr/bin/uvicorn", "project.fastapi_app:app", "--no-proxy-headers"], 1),
        (["manage.py", "runserver"], 1),
        (["project/flask_app.py", "--workers", "9"], 1),  # not a server we know
        ([], 1),
    ],
)
def test_server_workers_from_the_command_line(argv: list[str], count: int) -> None:
    assert server_workers(argv) == count


def test_web_concurrency_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert server_workers(["/usr/bin/uvicorn", "app:app"]) == 3
    assert server_workers(["/usr/bin/uvicorn", "app:app", "--workers", "2"]) == 2


def test_a_command_line_the_server_would_refuse_counts_as_one() -> None:
    assert server_workers(["/usr/bin/gunicorn", "-w", "many", "app:app"]) == 1


def test_one_warning_per_store_and_only_when_split(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(workers, "_warned", set())
    four = ["/usr/bin/gunicorn", "-w", "4", "app:app"]
    with caplog.at_level(logging.WARNING, "ratelimit_app"):
        assert not warn_if_split(False, "redis", four)  # shared store: nothing to say
        assert not warn_if_split(True, "memory://", ["/usr/bin/gunicorn", "app:app"])
        assert warn_if_split(True, "memory://", four)
        assert not warn_if_split(True, "memory://", four)  # once
    (record,) = caplog.records
    assert "process memory (memory://)" in record.getMessage()
    assert "4 worker processes" in record.getMessage()
