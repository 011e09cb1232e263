"""Django signals on the core's event hook: ``rate_limited``, ``store_failed``,
``store_recovered``.

Each signal joins the hook when its first receiver connects and leaves it with the last
one, so a site that listens to none of them pays nothing per request. Receivers get
``sender`` = the policy name (so ``rate_limited.connect(handler, sender="login")`` hears
one policy) and ``event``, the core ``Event`` (outcome, cost, remaining, retry_after,
latency, the identity's digest).
They run inside the request, in the thread that decided: keep them quick.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.dispatch import Signal

from .core.events import BREACHES, Event, hub

__all__ = ["rate_limited", "store_failed", "store_recovered"]


class EventSignal(Signal):
    """A signal fed by the event hook for some outcomes, subscribed on first connect."""

    def __init__(self, outcomes: Collection[str]) -> None:
        super().__init__()
        self.outcomes = frozenset(outcomes)

    def connect(self, receiver: Any, *args: Any, **kwargs: Any) -> None:
        super().connect(receiver, *args, **kwargs)
        hub.subscribe(self.forward)

    def disconnect(self, *args: Any, **kwargs: Any) -> bool:
        """The last receiver gone, the signal leaves the hook: back to zero cost."""
        found = super().disconnect(*args, **kwargs)
        if not self.receivers:
            hub.unsubscribe(self.forward)
        return found

    def forward(self, event: Event) -> None:
        if event.outcome in self.outcomes:
            self.send(sender=event.policy, event=event)


#: A request was refused (denied, shed, failure_denied) or, in shadow mode, would be.
rate_limited = EventSignal(BREACHES)
#: A store call failed (``on_store_error`` decided instead).
store_failed = EventSignal({"store_error"})
#: The store answered again after a failure.
store_recovered = EventSignal({"store_recovered"})
