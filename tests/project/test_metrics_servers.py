"""Metrics and shadow mode over HTTP: the Django demo under gunicorn with 4 workers.

Prometheus' multiprocess mode sums the workers' files, so ``/metrics`` from any worker
counts every decision exactly once.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from project.servers import DemoServer, burst

REQUESTS = 60
CAPACITY = 5


def demo_env(redis_url: str, key_prefix: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    prom = tmp_path / "prom"
    prom.mkdir()
    return {
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "REDIS_URL": redis_url,
        "RATELIMIT_CAPACITY": str(CAPACITY),
        "RATELIMIT_REFILL_RATE": "1e-6",
        "RATELIMIT_KEY_PREFIX": key_prefix,
        "RATELIMIT_METRICS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(prom),
        "DJANGO_DB_PATH": str(tmp_path / "db.sqlite3"),
        **extra,
    }


def scrape(port: int) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return text, samples


def decisions(samples: dict[Any, float]) -> Counter[str]:
    counted: Counter[str] = Counter()
    for (name, labels), value in samples.items():
        if name == "ratelimit_decisions_total":
            counted[dict(labels)["outcome"]] += int(value)
    return counted


@pytest.mark.slow
def test_metrics_count_every_decision_once_across_four_workers(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    with DemoServer(demo_env(redis_url, key_prefix, tmp_path), workers=4) as server:
        codes = burst(server.port, "/api/ping", requests=REQUESTS, concurrency=20)
        text, samples = scrape(server.port)
    print(text)  # the note pastes this
    assert codes == {200: CAPACITY, 429: REQUESTS - CAPACITY}, server.output()
    counted = decisions(samples)
    assert sum(counted.values()) == REQUESTS
    assert counted["allowed"] == CAPACITY
    assert counted["denied"] + counted["shed"] == REQUESTS - CAPACITY
    labels = (("policy", "default"), ("store", "DjangoCacheStore"))
    histogram = ("ratelimit_decision_seconds_count", labels)
    assert samples[histogram] == REQUESTS
    assert samples[("ratelimit_near_limit_total", (("policy", "default"),))] == 1  # 0 of 5 left
    assert "127.0.0.1" not in text  # no identity ever becomes a label


@pytest.mark.slow
def test_shadow_mode_passes_everything_and_counts_what_it_would_refuse(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    env = demo_env(redis_url, key_prefix, tmp_path, RATELIMIT_MODE="shadow")
    with DemoServer(env, workers=4) as server:
        url = f"http://127.0.0.1:{server.port}/api/ping"
        with httpx.Client(timeout=30) as client:
            answers = [client.get(url) for _ in range(20)]
        _, samples = scrape(server.port)
    assert [a.status_code for a in answers] == [200] * 20
    remaining = [a.headers["X-RateLimit-Remaining"] for a in answers]
    assert remaining == ["4", "3", "2", "1", "0"] + ["0"] * 15  # enforce mode's arithmetic
    assert all(a.headers["RateLimit"].startswith('"default";r=0;t=') for a in answers[5:])
    assert decisions(samples) == {"allowed": 5, "shadow_denied": 15}
