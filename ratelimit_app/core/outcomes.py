"""Charging on the outcome: which answered requests keep their charge.

Flask-Limiter's ``deduct_when`` counts a request after the view ran, so requests that
arrive together all pass before any of them is counted, and the limit is overshot. Here
the tokens are taken *before* the view runs, as for every request (so any concurrency
stays exact), and given back afterwards (``limiter.refund``, atomic, capped at capacity)
when the outcome says the request should not count:

* ``deduct_when``: a callable of the response, True to keep the charge;
* ``charge_on_status``: a shortcut such as ``"not 5xx"``, ``"2xx"`` or
  ``"2xx, 3xx, 401"`` (classes and codes, optionally all negated by a leading ``not``).

With both, a request is charged only if both say so. A 405 (the view does not implement
the method) is never charged. An exception the view raised counts as a 500.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config import ConfigError, Problem
from .request_keys import import_callable

__all__ = ["Charging", "check_charging", "parse_statuses"]

METHOD_NOT_ALLOWED = 405
_ITEM = re.compile(r"([1-5])xx|([1-5][0-9][0-9])")
_ALL = range(100, 600)


def parse_statuses(value: Any) -> frozenset[int]:
    """The statuses ``charge_on_status`` charges: ``"not 5xx"`` is every status but
    500-599; ``"2xx, 301"`` is 200-299 and 301."""
    text = value.strip().lower() if isinstance(value, str) else None
    negated = text is not None and text.startswith("not ")
    items = [item.strip() for item in (text or "").removeprefix("not ").split(",")]
    found: set[int] = set()
    for item in items:
        match = _ITEM.fullmatch(item)
        if match is None:
            raise ConfigError(
                f"charge_on_status must read like 'not 5xx', '2xx' or '2xx, 301', got {value!r}",
                kind=Problem.CHARGE,
            )
        first = int(match[1]) * 100 if match[1] else int(match[2])
        found.update(range(first, first + (100 if match[1] else 1)))
    return frozenset(set(_ALL) - found if negated else found)


@dataclass(frozen=True, slots=True)
class Charging:
    """When an admitted request keeps its charge; the default keeps every one but 405s."""

    deduct_when: Callable[[Any], Any] | None = None
    statuses: frozenset[int] | None = None  # None: every status

    def keeps(self, status: int, response: Any) -> bool:
        """Whether the request stays charged; ``response`` is the framework's (None
        when the view raised)."""
        if status == METHOD_NOT_ALLOWED:
            return False
        if self.statuses is not None and status not in self.statuses:
            return False
        return self.deduct_when is None or response is None or bool(self.deduct_when(response))


CHARGE_ALL = Charging()


def check_charging(deduct_when: Any = None, charge_on_status: Any = None) -> Charging | None:
    """The ``Charging`` these two settings ask for; None when neither is given."""
    if deduct_when is None and charge_on_status is None:
        return None
    when = (
        None
        if deduct_when is None
        else import_callable(deduct_when, "deduct_when", Problem.CHARGE)
    )
    statuses = None if charge_on_status is None else parse_statuses(charge_on_status)
    return Charging(when, statuses)
