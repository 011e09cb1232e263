"""Denial logging that a flood cannot turn into a flood of lines.

The first denial of a (policy, identity digest) pair is logged at once; further denials
of the same pair within ``interval`` seconds are only counted, and the count is logged
as one summary line when the window closes (at the pair's next denial after it, or when
any later denial finds the window expired). So a 4,480-request burst from one client is
two lines, not 4,430, and a client that is refused once is still seen at once.

Lines carry the digest, never the identity: a client that chooses its own identity
(a header, an API key) cannot forge log lines or send terminal escapes through them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["DenialLog"]


class DenialLog:
    """Bounded per-pair windows, oldest first; expired ones are flushed as we go."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 10.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.max_keys = max_keys
        self.clock = clock
        self._lock = threading.Lock()
        # (policy, digest) -> [window start, denials counted after the first]
        self._windows: OrderedDict[tuple[str, str], list[float]] = OrderedDict()

    def denied(self, policy: str, digest: str, outcome: str, cost: float, retry: float) -> None:
        """Log this denial, or count it into its pair's open window."""
        now = self.clock()
        pair = (policy, digest)
        with self._lock:
            due = self._expire(now)
            window = self._windows.get(pair)
            if window is not None:
                window[1] += 1
            else:
                self._windows[pair] = [now, 0]
                while len(self._windows) > self.max_keys:
                    due.append(self._windows.popitem(last=False))
        for (p, d), (start, count) in due:
            self._summary(p, d, count, now - start)
        if window is None:
            self.logger.info(
                "rate limited: policy=%s identity=%s outcome=%s cost=%g retry_after=%.3f",
                policy, digest, outcome, cost, retry,
            )  # fmt: skip

    def _expire(self, now: float) -> list[tuple[tuple[str, str], list[float]]]:
        windows, due = self._windows, []
        while windows:
            pair, window = next(iter(windows.items()))
            if now - window[0] < self.interval:
                break
            due.append((pair, windows.pop(pair)))
        return due

    def _summary(self, policy: str, digest: str, count: float, seconds: float) -> None:
        if count:
            self.logger.info(
                "rate limited: policy=%s identity=%s repeated=%d in the %.0f s after the first",
                policy, digest, count, seconds,
            )  # fmt: skip

    def flush(self) -> None:
        """Log every open window's count now (for tests and shutdown hooks)."""
        with self._lock:
            due, self._windows = list(self._windows.items()), OrderedDict()
        now = self.clock()
        for (policy, digest), (start, count) in due:
            self._summary(policy, digest, count, now - start)
