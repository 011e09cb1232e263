"""``manage.py ratelimit list | show <identity> | reset | grant | drain``.

The same data and actions as the admin page (``ratelimit_app.inspection``), for shells
and scripts. A command runs in a process of its own: over a local-memory cache it sees
only its own (empty) buckets, never the server's, so it says so, and the actions fail
with a non-zero exit instead of reporting a success that changed nothing.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import inspection
from ...conf import Runtime, get_runtime
from ...core.config import ConfigError
from ...core.stores.base import StoreError

LOCAL = (
    "{where} is local memory: each server process keeps its own buckets and "
    "this command, a process of its own, cannot see or change them"
)


def _fmt(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


class Command(BaseCommand):
    help = "Inspect, reset, grant tokens to or drain rate-limit buckets."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="policies and live buckets")
        show = sub.add_parser("show", help="one identity's buckets in every policy")
        show.add_argument("identity", help="e.g. ip:203.0.113.7 or user:42")
        for name, text in (
            ("reset", "refill one identity's buckets"),
            ("grant", "add tokens to one identity's buckets (capped at capacity)"),
            ("drain", "empty one identity's buckets: refused until they refill"),
        ):
            action = sub.add_parser(name, help=text)
            action.add_argument("identity")
            if name == "grant":
                action.add_argument("amount", help="tokens to add, a number > 0")
            action.add_argument("--policy", help="only this policy (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            runtime = get_runtime()
            getattr(self, f"do_{options['action']}")(runtime, options)
        except (ConfigError, StoreError) as exc:
            raise CommandError(str(exc)) from exc

    def _local(self, runtime: Runtime) -> bool:
        """Warn (on stderr) that a locmem cache is invisible from here; True if it is."""
        if runtime.store.kind not in ("locmem", "memory"):
            return False
        self.stderr.write(LOCAL.format(where=runtime.store.label))
        return True

    def do_list(self, runtime: Runtime, options: dict[str, Any]) -> None:
        self._local(runtime)
        self.stdout.write(f"{runtime.store.label} ({runtime.store.kind})")
        self.stdout.write("policy\tmode\tcapacity\trefill/s\tcost")
        for p in inspection.policy_rows(runtime):
            self.stdout.write(
                f"{p.name}\t{p.mode}\t{_fmt(p.capacity)}\t{p.refill_rate:g}\t{_fmt(p.cost)}"
            )
        buckets = inspection.live_buckets(runtime)
        self.stdout.write(f"{len(buckets)} live bucket(s); every other identity is full")
        self._rows(inspection.rows_for(runtime, buckets))

    def do_show(self, runtime: Runtime, options: dict[str, Any]) -> None:
        self._local(runtime)
        self._rows(inspection.identity_buckets(options["identity"], runtime))

    def do_reset(self, runtime: Runtime, options: dict[str, Any]) -> None:
        self._act(runtime, "reset", options)

    def do_grant(self, runtime: Runtime, options: dict[str, Any]) -> None:
        self._act(runtime, "grant", options)

    def do_drain(self, runtime: Runtime, options: dict[str, Any]) -> None:
        self._act(runtime, "drain", options)

    def _act(self, runtime: Runtime, action: str, options: dict[str, Any]) -> None:
        policy = options.get("policy")
        chosen = runtime.policy(policy).name if policy else None
        names = [
            name
            for name in sorted(inspection.bucket_names(runtime))
            if chosen is None or name.partition(":")[0] == chosen
        ]  # a tiered policy's every tier
        if self._local(runtime):
            raise CommandError(f"nothing done: {action} must run inside the server process")
        for name in names:
            key = inspection.identity_key(options["identity"], name, runtime)
            self.stdout.write(inspection.act(action, key, options.get("amount"), runtime))

    def _rows(self, rows: list[inspection.BucketRow]) -> None:
        self.stdout.write("identity\tpolicy\ttokens\tcapacity\tfull_in_s\tstate\tkey")
        for r in rows:
            state = "refused" if r.refused else "admitted"
            policy = f"{r.policy}/{r.tier}" if r.tier else r.policy
            self.stdout.write(
                f"{r.identity}\t{policy}\t{_fmt(r.tokens)}\t{_fmt(r.capacity)}\t"
                f"{_fmt(r.seconds_to_full)}\t{state}\t{r.key}{'' if r.stored else ' (not stored)'}"
            )
