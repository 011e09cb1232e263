"""The Prometheus listener, on a private registry: what each event counts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from ratelimit_app.core import MemoryStore, RateLimitConfig, StoreError, TokenBucketRateLimiter
from ratelimit_app.core.events import hub
from ratelimit_app.core.metrics import PrometheusMetrics


class DownStore(MemoryStore):
    def take_all(self, *args: object) -> object:
        raise StoreError("down")


def test_decisions_near_limit_store_errors_and_no_identity_label() -> None:
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)
    hub.subscribe(metrics)
    try:
        limiter = TokenBucketRateLimiter(RateLimitConfig(10, 1e-6), MemoryStore(), name="api")
        for _ in range(11):
            limiter.allow_request("secret-client-id")
        down = TokenBucketRateLimiter(RateLimitConfig(10, 1e-6), DownStore(), name="dn",
                                      on_store_error="allow")  # fmt: skip
        down.allow_request("x")
    finally:
        hub.unsubscribe(metrics)
    value = registry.get_sample_value
    assert value("ratelimit_decisions_total", {"policy": "api", "outcome": "allowed"}) == 10
    assert value("ratelimit_decisions_total", {"policy": "api", "outcome": "denied"}) == 1
    # 10 tokens: the admissions leaving 1 and 0 (< 2, i.e. 20%) are near the limit
    assert value("ratelimit_near_limit_total", {"policy": "api"}) == 2
    assert value("ratelimit_store_errors_total", {"policy": "dn"}) == 1
    assert value("ratelimit_decisions_total", {"policy": "dn", "outcome": "failure_allowed"}) == 1
    labels = {"policy": "api", "store": "MemoryStore"}
    assert value("ratelimit_decision_seconds_count", labels) == 11
    assert b"secret-client-id" not in generate_latest(registry)
