"""Prometheus metrics, as one listener on the event hook (``pip install ...[prometheus]``).

* ``ratelimit_decisions_total{policy,outcome}``: every decision, by outcome (and
  ``refunded``: tokens given back after the response);
* ``ratelimit_store_errors_total{policy}``: store calls that failed;
* ``ratelimit_decision_seconds{policy,store}``: time from the call to the answer;
* ``ratelimit_near_limit_total{policy}``: admissions that left less than 20% of the
  bucket, as Envoy's ratelimit service counts them: the early warning before denials.

Labels are policy names, the fixed outcomes and store class names, all set by the
configuration, never by clients: the number of series is bounded. Under gunicorn or
uvicorn with several workers, set ``PROMETHEUS_MULTIPROC_DIR`` (an empty directory,
before the workers start) and ``render_metrics`` sums every worker's files.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from .events import REFUNDED, STORE_OUTCOMES, Event, hub

__all__ = ["NEAR_LIMIT", "PrometheusMetrics", "enable_metrics", "render_metrics"]

NEAR_LIMIT = 0.2  # an admission leaving less than this share of the bucket is "near"
_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_lock = threading.Lock()
_enabled: PrometheusMetrics | None = None


class PrometheusMetrics:
    """The listener: four metric families on ``registry`` (prometheus_client's default
    registry unless given)."""

    def __init__(self, registry: Any = None) -> None:
        from prometheus_client import REGISTRY, Counter, Histogram

        registry = REGISTRY if registry is None else registry
        self.decisions = Counter(
            "ratelimit_decisions", "Rate-limit decisions by policy and outcome.",
            ["policy", "outcome"], registry=registry,
        )  # fmt: skip
        self.store_errors = Counter(
            "ratelimit_store_errors", "Rate-limit store calls that failed.",
            ["policy"], registry=registry,
        )  # fmt: skip
        self.seconds = Histogram(
            "ratelimit_decision_seconds", "Seconds from a rate-limit call to its decision.",
            ["policy", "store"], buckets=_BUCKETS, registry=registry,
        )  # fmt: skip
        self.near_limit = Counter(
            "ratelimit_near_limit", "Admissions that left less than 20% of the bucket.",
            ["policy"], registry=registry,
        )  # fmt: skip

    def __call__(self, event: Event) -> None:
        policy = event.policy
        if event.outcome in STORE_OUTCOMES:
            if event.outcome == "store_error":
                self.store_errors.labels(policy).inc()
            return
        self.decisions.labels(policy, event.outcome).inc()
        if event.outcome == REFUNDED:  # after the decision: counted, but not timed again
            return
        self.seconds.labels(policy, event.store).observe(event.latency)
        if event.outcome == "allowed" and event.remaining < NEAR_LIMIT * event.capacity:
            self.near_limit.labels(policy).inc()


def enable_metrics() -> PrometheusMetrics:
    """Register the Prometheus listener once per process (idempotent: every app and
    every settings reload shares it, as the metric names are process-wide)."""
    global _enabled
    with _lock:
        if _enabled is None:
            _enabled = PrometheusMetrics()
    hub.subscribe(_enabled)  # again after a test or a reload removed it: idempotent
    return _enabled


def render_metrics() -> tuple[bytes, str]:
    """The exposition text and its content type: this process's registry, or, in
    multiprocess mode, the sum over every worker's files."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import CollectorRegistry, multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
