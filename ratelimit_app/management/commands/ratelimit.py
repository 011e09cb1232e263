"""``manage.py ratelimit list | show <identity> | reset <identity> [--policy P]``.

The same data as the admin page (``ratelimit_app.inspect``), for shells and scripts.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import inspection
from ...conf import get_runtime
from ...core.config import ConfigError
from ...core.stores.base import StoreError


def _fmt(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


class Command(BaseCommand):
    help = "Inspect or reset rate-limit buckets."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="policies and live buckets")
        show = sub.add_parser("show", help="one identity's bucket in every policy")
        show.add_argument("identity", help="e.g. ip:203.0.113.7 or user:42")
        reset = sub.add_parser("reset", help="refill one identity's buckets")
        reset.add_argument("identity")
        reset.add_argument("--policy", help="only this policy (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"do_{options['action']}")(options)
        except (ConfigError, StoreError) as exc:
            raise CommandError(str(exc)) from exc

    def do_list(self, options: dict[str, Any]) -> None:
        runtime = get_runtime()
        self.stdout.write(f"{runtime.store.label} ({runtime.store.kind})")
        self.stdout.write("policy\tcapacity\trefill/s\tcost")
        for p in inspection.policy_rows(runtime):
            self.stdout.write(f"{p.name}\t{_fmt(p.capacity)}\t{p.refill_rate:g}\t{_fmt(p.cost)}")
        keys = inspection.live_keys(runtime)
        self.stdout.write(f"{len(keys)} live bucket(s)")
        self._rows(inspection.rows_for_keys(keys, runtime))

    def do_show(self, options: dict[str, Any]) -> None:
        self._rows(inspection.identity_buckets(options["identity"]))

    def do_reset(self, options: dict[str, Any]) -> None:
        names = inspection.reset_identity(options["identity"], options.get("policy"))
        self.stdout.write(f"reset {options['identity']} in: {', '.join(names)}")

    def _rows(self, rows: list[inspection.BucketRow]) -> None:
        self.stdout.write("identity\tpolicy\ttokens\tcapacity\tfull_in_s\tkey")
        for r in rows:
            self.stdout.write(
                f"{r.identity}\t{r.policy}\t{_fmt(r.tokens)}\t{_fmt(r.capacity)}\t"
                f"{_fmt(r.seconds_to_full)}\t{r.key}{'' if r.stored else ' (not stored)'}"
            )
