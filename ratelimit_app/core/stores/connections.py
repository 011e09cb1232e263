"""A few connections a sync store keeps checked out of its client's pool, for decisions.

redis-py 8's pool checkout and release (locks, a liveness poll, metrics) cost a sync
decision more client CPU than sending the command and reading its reply. A store keeps
up to ``keep`` connections it took from the pool and hands them to its threads itself:
``list.pop`` and ``list.append`` are atomic, so no lock is needed. Beyond ``keep``
concurrent decisions, connections come from the pool and go back to it, so the pool
stays available to everything else that shares it. The kept connections stay counted
by the pool as in use, so closing the pool closes them; a forked child drops the
parent's (their sockets are the parent's) and takes its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from redis.exceptions import ResponseError

__all__ = ["ConnectionCache"]

T = TypeVar("T")


class ConnectionCache:
    def __init__(self, pool: Any, keep: int = 8) -> None:
        self.pool = pool
        # never more than a quarter of a bounded pool: the rest serve other commands
        self.keep = min(keep, getattr(pool, "max_connections", keep) // 4)
        self._idle: list[Any] = []
        self._pid = os.getpid()

    def run(self, exchange: Callable[[Any], T]) -> T:
        """``exchange(connection)`` on a kept connection, or a pooled one if none is idle.

        A connection whose exchange failed is disconnected before it is kept again: a
        reply may still be pending on it (redis-py reconnects it on next use)."""
        if self._pid != os.getpid():
            self._idle, self._pid = [], os.getpid()
        try:
            connection = self._idle.pop()
        except IndexError:
            connection = self.pool.get_connection()
        try:
            return exchange(connection)
        except ResponseError:
            raise  # a whole reply was read: the connection is clean
        except BaseException:
            connection.disconnect()
            raise
        finally:
            if len(self._idle) < self.keep:
                self._idle.append(connection)
            else:
                self.pool.release(connection)
