"""The one shape every library under test is reduced to: ``decide(identity) -> admitted``.

It sits apart from the adapters so that they (``peer_adapters``, ``django_peers``) and
the workloads (``measure``) all depend on it, and never on each other in a circle.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Decide = Callable[[str], bool]
ADecide = Callable[[str], Awaitable[bool]]
# Entries a memory store keeps: this project's default. Peers whose default LRU is smaller
# (1,024 or 300) are raised to it, or 10,000 keys would measure their evictions.
MAX_KEYS = 100_000


@dataclass(frozen=True)
class Quota:
    capacity: int
    period: int  # seconds to refill from empty

    @property
    def per_second(self) -> float:
        return self.capacity / self.period
