"""The event hook: each outcome fires exactly once per decision, on every store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ratelimit_app.core import MemoryStore, RateLimitConfig, StoreError, TokenBucketRateLimiter
from ratelimit_app.core import limiter as limiter_module
from ratelimit_app.core.events import Event, hub
from ratelimit_app.core.keys import log_identity
from tests.core.conftest import Harness

C2 = RateLimitConfig(capacity=2, refill_rate=1e-6)


@pytest.fixture
def events() -> Iterator[list[Event]]:
    seen: list[Event] = []
    hub.subscribe(seen.append)
    yield seen
    hub.unsubscribe(seen.append)


def outcomes(events: list[Event]) -> list[str]:
    return [event.outcome for event in events]


def test_allowed_denied_and_shed_once_each(make_limiter, events: list[Event]) -> None:
    lim: Harness = make_limiter(C2, shed_denials=True)
    answers = [lim.allow("client-1").allowed for _ in range(4)]
    assert answers == [True, True, False, False]
    assert outcomes(events) == ["allowed", "allowed", "denied", "shed"]
    first, denied = events[0], events[2]
    assert (first.policy, first.cost, first.remaining, first.capacity) == ("default", 1, 1, 2)
    assert denied.retry_after == pytest.approx(1e6) and denied.breach and not first.breach
    assert {e.identity for e in events} == {log_identity("client-1")}  # a digest, not the id
    assert all(e.latency >= 0 and e.source is lim.limiter for e in events)
    assert {e.store for e in events} == {type(lim.limiter.store).__name__}


def test_shadow_mode_lets_denials_pass_with_enforce_arithmetic(
    make_limiter, events: list[Event]
) -> None:
    shadow: Harness = make_limiter(C2, shadow=True)
    enforce: Harness = make_limiter(C2, key_prefix=shadow.limiter.key_prefix + "e")
    for _ in range(5):
        seen, real = shadow.allow("c"), enforce.allow("c")
        assert seen.allowed
        assert (seen.remaining, seen.cost, seen.next_after) == (
            real.remaining, real.cost, real.next_after,
        )  # fmt: skip
    counted = outcomes(e for e in events if e.source is shadow.limiter)
    assert counted == ["allowed", "allowed"] + ["shadow_denied"] * 3


def test_switching_shadow_to_enforce_keeps_the_stored_state(make_limiter) -> None:
    shadow: Harness = make_limiter(C2, shadow=True)
    for _ in range(3):
        assert shadow.allow("c").allowed
    enforce: Harness = make_limiter(C2, key_prefix=shadow.limiter.key_prefix)
    enforce.limiter.store = shadow.limiter.store  # the same buckets, a new limiter
    assert not enforce.allow("c").allowed


class FlakyStore(MemoryStore):
    """A memory store that fails while ``down`` is set."""

    down = False

    def take_all(self, *args: Any) -> Any:
        if self.down:
            raise StoreError("down")
        return super().take_all(*args)


@pytest.mark.parametrize(
    ("mode", "expected"), [("allow", "failure_allowed"), ("deny", "failure_denied")]
)
def test_store_failure_and_recovery(mode: str, expected: str, events: list[Event]) -> None:
    store = FlakyStore()
    limiter = TokenBucketRateLimiter(C2, store, on_store_error=mode, shed_denials=False)
    limiter.failure.retry_interval = 0.0  # ask the store on every call
    store.down = True
    limiter.allow_request("c")
    limiter.allow_request("c")
    store.down = False
    limiter.allow_request("c")
    assert outcomes(events) == ["store_error", expected] * 2 + ["store_recovered", "allowed"]


def test_a_failing_listener_is_logged_and_never_breaks_a_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    hub.subscribe(broken)
    try:
        assert TokenBucketRateLimiter(C2, MemoryStore()).allow_request("c").allowed
    finally:
        hub.unsubscribe(broken)
    assert "listener" in caplog.text and "listener bug" in caplog.text


def test_no_listener_builds_no_event_and_reads_no_clock(monkeypatch) -> None:
    """The zero-cost claim, checked by what runs (the bench row measures it)."""

    def forbidden(*args: Any) -> Any:
        raise AssertionError("built without a listener")

    assert hub.listeners == ()
    monkeypatch.setattr(limiter_module, "Event", forbidden)
    monkeypatch.setattr(limiter_module, "perf_counter", forbidden)
    limiter = TokenBucketRateLimiter(C2, MemoryStore(), shadow=True)
    assert [limiter.allow_request("c").allowed for _ in range(3)] == [True] * 3


def test_subscribe_is_idempotent_and_works_as_a_decorator() -> None:
    calls: list[Event] = []
    listener: Callable[[Event], None] = calls.append
    assert hub.subscribe(listener) is listener
    hub.subscribe(listener)
    try:
        TokenBucketRateLimiter(C2, MemoryStore()).allow_request("c")
    finally:
        hub.unsubscribe(listener)
    assert len(calls) == 1 and hub.listeners == ()
