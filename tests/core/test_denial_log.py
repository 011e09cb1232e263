"""Denial logs: a flood from one client is a first line and a count, never a raw id."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from ratelimit_app.core import MemoryStore, RateLimitConfig, TokenBucketRateLimiter
from ratelimit_app.core.denial_log import DenialLog
from ratelimit_app.core.keys import log_identity
from tests.conftest import ManualClock

C1 = RateLimitConfig(capacity=1, refill_rate=1e-6)


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ratelimit_app"]


def test_repeated_denials_are_counted_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    log = DenialLog(logging.getLogger("ratelimit_app"), interval=10, clock=clock)
    caplog.set_level(logging.INFO, "ratelimit_app")
    for _ in range(1000):
        log.denied("api", "abc", "denied", 1, 2.0)
    log.denied("api", "other", "shed", 1, 2.0)  # another client: its own first line
    clock.advance(10)
    log.denied("web", "x", "denied", 1, 1.0)  # any later denial flushes expired windows
    found = lines(caplog)
    assert len(found) == 4
    assert found[0].startswith("rate limited: policy=api identity=abc outcome=denied")
    assert "identity=other outcome=shed" in found[1]
    assert "policy=api identity=abc repeated=999" in found[2]
    assert "policy=web identity=x outcome=denied" in found[3]


def test_the_window_map_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    log = DenialLog(logging.getLogger("ratelimit_app"), max_keys=3, clock=ManualClock())
    caplog.set_level(logging.INFO, "ratelimit_app")
    for i in range(10):
        log.denied("api", f"id{i}", "denied", 1, 1.0)
        log.denied("api", f"id{i}", "denied", 1, 1.0)
    assert len(log._windows) == 3
    assert sum("repeated=1" in line for line in lines(caplog)) == 7  # evicted ones: counted
    log.flush()
    assert sum("repeated=1" in line for line in lines(caplog)) == 10


@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO])
def test_identities_are_logged_as_digests_at_every_level(
    caplog: pytest.LogCaptureFixture, level: int
) -> None:
    forged = "evil\n2026-01-01 INFO forged line \x1b[31m"
    caplog.set_level(level, "ratelimit_app")
    limiter = TokenBucketRateLimiter(C1, MemoryStore(), name=f"digest{level}")
    limiter.allow_request(forged)
    limiter.allow_request(forged)
    text = "\n".join(lines(caplog))
    assert "evil" not in text and "\x1b" not in text and "forged" not in text
    assert log_identity(forged) in text


def test_a_window_open_at_exit_is_logged_not_lost() -> None:
    """A process that is refused 5 times and exits within the window still says so."""
    program = (
        "import logging; logging.basicConfig(level=logging.INFO)\n"
        "from ratelimit_app.core import MemoryStore, RateLimitConfig, TokenBucketRateLimiter\n"
        "limiter = TokenBucketRateLimiter(RateLimitConfig(1, 1e-6), MemoryStore(), name='p')\n"
        "for _ in range(6): limiter.allow_request('client')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    logged = [line for line in done.stderr.splitlines() if "rate limited" in line]
    assert len(logged) == 2, done.stderr
    assert "repeated=4" in logged[1]
