"""One hook for everything a limiter decides: metrics, signals, callbacks and audits.

Every decision (allowed, denied, shed, decided by the failure policy, shadow-denied) and
every store failure and recovery becomes one ``Event``, handed to each registered
listener in the thread (or event loop) that made the decision. With no listener the
limiter checks one attribute, ``hub.listeners``, and builds nothing: no clock read, no
event, no call. A listener that raises is logged and never breaks the request.

Events name the policy, never the client: ``identity`` is the same short digest the
denial log prints, so listeners can count per client without seeing who it is.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BREACHES",
    "OUTCOMES",
    "Event",
    "EventHub",
    "Listener",
    "hub",
    "scoped",
    "subscribe",
    "unsubscribe",
]

logger = logging.getLogger("ratelimit_app")

#: Outcomes of a decision. ``shed``: denied from this process's denial memory without a
#: store round trip; ``failure_*``: decided by ``on_store_error`` while the store failed.
DECISIONS = ("allowed", "denied", "shed", "failure_allowed", "failure_denied", "shadow_denied")
#: Outcomes of the store itself, one event per failed call and one per recovery.
STORE_OUTCOMES = ("store_error", "store_recovered")
#: Tokens given back after the response (``deduct_when`` / ``charge_on_status``, a 405).
REFUNDED = "refunded"
OUTCOMES = (*DECISIONS, *STORE_OUTCOMES, REFUNDED)
#: The outcomes of a request that was (or, in shadow mode, would have been) refused.
BREACHES = frozenset({"denied", "shed", "failure_denied", "shadow_denied"})


@dataclass(frozen=True, slots=True)
class Event:
    """What happened, for whom (a digest), how long the limiter took to say so.

    ``remaining`` and ``retry_after`` are the decision's (0 for store events);
    ``capacity`` is the binding bucket's, so listeners can tell how close to the limit a
    client is; ``latency`` is seconds from the call to the answer; ``store`` the store's
    class name; ``source`` the limiter that decided, so a listener can keep to its app.
    """

    policy: str
    outcome: str
    cost: float
    remaining: float
    retry_after: float
    capacity: float
    store: str
    latency: float
    identity: str
    source: Any = None

    @property
    def breach(self) -> bool:
        return self.outcome in BREACHES


Listener = Callable[[Event], None]


class EventHub:
    """The registered listeners, as a tuple swapped whole: emitting never takes a lock."""

    def __init__(self) -> None:
        self.listeners: tuple[Listener, ...] = ()
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> Listener:
        """Register ``listener`` (once, however often it is passed); returns it, so this
        works as a decorator."""
        with self._lock:
            if listener not in self.listeners:
                self.listeners = (*self.listeners, listener)
        return listener

    def unsubscribe(self, listener: Listener) -> None:
        with self._lock:
            self.listeners = tuple(x for x in self.listeners if x != listener)

    def emit(self, event: Event) -> None:
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("rate-limit event listener %r failed", listener)


#: The process-wide hub every limiter emits to.
hub = EventHub()
subscribe = hub.subscribe
unsubscribe = hub.unsubscribe


def scoped(
    listener: Listener, sources: Callable[[], Collection[object]], outcomes: Collection[str]
) -> Listener:
    """``listener``, called only for ``outcomes`` from the limiters ``sources()`` returns
    (read at each event, so an app can rebuild its limiters): one app's callback never
    hears another app's decisions."""

    def forward(event: Event) -> None:
        if event.outcome in outcomes and event.source in sources():
            listener(event)

    return forward
