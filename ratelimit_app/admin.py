"""The admin page of bucket state, for people who act: see who is refused, then reset,
grant or drain.

It hangs off a table-less model so the admin index lists it like any other entry and
Django's permissions apply: viewing needs ``ratelimit_app.view_bucket``, actions need
``ratelimit_app.change_bucket`` (superusers have both); ``is_staff`` alone is not enough.
Every view goes through ``admin_site.admin_view`` (staff only, CSRF, never cached).
Query parameters are whatever a person typed: unknown sorts, policies and page numbers
fall back to defaults with a message, never a 500.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from . import inspection
from .conf import Runtime, get_runtime
from .core.config import ConfigError
from .core.stores.base import StoreError
from .models import Bucket

PAGE_SIZE = 50
_KEPT = ("q", "policy", "sort", "p")  # query parameters an action returns to


@admin.register(Bucket)
class BucketAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.buckets_view), name=f"{name}_changelist"),
            path("act/", wrap(require_POST(self.act_view)), name=f"{name}_act"),
        ]

    def buckets_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        runtime = get_runtime()
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Rate-limit buckets",
            "policies": inspection.policy_rows(runtime),
            "source": runtime.store.label,
            "backend": runtime.store.kind,
            "prefix": runtime.settings.key_prefix,
            "can_change": self.has_change_permission(request),
            "sorts": list(inspection.SORTS),
            **self._filters(request, runtime),
        }
        try:
            context.update(self._rows(context))
        except StoreError as exc:
            context["store_error"] = str(exc)
        return TemplateResponse(request, "admin/ratelimit_app/buckets.html", context)

    def _filters(self, request: HttpRequest, runtime: Runtime) -> dict[str, Any]:
        """The query, policy, sort and page as typed; bad ones fall back with a message."""
        query = request.GET.get("q", "").strip()[:200]
        policy = request.GET.get("policy", "")
        sort = request.GET.get("sort", "tokens")
        if policy and policy not in runtime.settings.policies:
            messages.warning(request, "Unknown policy filter ignored.")
            policy = ""
        if sort not in inspection.SORTS:
            messages.warning(request, "Unknown sort ignored.")
            sort = "tokens"
        kept = {"q": query, "policy": policy, "sort": sort}
        return {
            "query": query, "policy": policy, "sort": sort, "page_number": request.GET.get("p"),
            "filter_query": urlencode({k: v for k, v in kept.items() if v}),
        }  # fmt: skip

    def _rows(self, context: dict[str, Any]) -> dict[str, Any]:
        query, policy = context["query"], context["policy"]
        if query and not inspection.is_digest(query):  # one identity: full buckets too
            rows = inspection.identity_buckets(query)
            rows = [r for r in rows if not policy or r.policy == policy]
            return {"rows": rows, "entries": _entries(rows), "searched": True}
        found = inspection.listing(
            query, policy or None, context["sort"], context["page_number"], PAGE_SIZE
        )
        return {
            "rows": found.rows, "entries": _entries(found.rows), "listing": found,
            "page": found.page,
        }  # fmt: skip

    def act_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        action, key = request.POST.get("action", ""), request.POST.get("key", "")
        try:
            done = inspection.act(action, key, request.POST.get("amount"))
        except (ConfigError, StoreError) as exc:
            messages.error(request, f"Nothing done: {exc}")
        else:
            messages.success(request, done)
        target = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
        kept = {name: request.POST[name] for name in _KEPT if request.POST.get(name)}
        return HttpResponseRedirect(target + ("?" + urlencode(kept) if kept else ""))


def _entries(
    rows: list[inspection.BucketRow],
) -> list[tuple[inspection.BucketRow, tuple[str, str | None] | None]]:
    """Each row with its user (name, admin link) when the identity is ``user:<pk>``."""
    users = _users(rows)
    return [(row, users.get(row.identity)) for row in rows]


def _users(rows: list[inspection.BucketRow]) -> dict[str, tuple[str, str | None]]:
    """``user:<pk>`` identities -> (username, link to the user's admin page)."""
    pks = {r.identity.split(":", 1)[1] for r in rows if r.identity.startswith("user:")}
    pks = {pk for pk in pks if pk.isdigit()}
    if not pks:
        return {}
    model = get_user_model()
    found: dict[str, tuple[str, str | None]] = {}
    for user in model._default_manager.filter(pk__in=pks):
        opts = user._meta
        try:
            link: str | None = reverse(
                f"admin:{opts.app_label}_{opts.model_name}_change", args=[user.pk]
            )
        except NoReverseMatch:
            link = None
        found[f"user:{user.pk}"] = (user.get_username(), link)
    return found
