"""The admin page of bucket state: policies, live buckets, one-identity search, reset.

It hangs off a table-less model so the admin index lists it like any other entry; every
view of that model is replaced, and all of them go through ``admin_site.admin_view``
(staff only, CSRF-protected, never cached).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from . import inspection
from .conf import get_runtime
from .core.config import ConfigError
from .core.stores.base import StoreError
from .models import Bucket

PAGE_SIZE = 50


def _staff(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and getattr(user, "is_staff", False))


@admin.register(Bucket)
class BucketAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_module_permission(self, request: HttpRequest) -> bool:
        return _staff(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _staff(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _staff(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.buckets_view), name=f"{name}_changelist"),
            path("reset/", wrap(require_POST(self.reset_view)), name=f"{name}_reset"),
        ]

    def buckets_view(self, request: HttpRequest) -> HttpResponse:
        runtime = get_runtime()
        query = request.GET.get("q", "").strip()
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Rate-limit buckets",
            "query": query,
            "policies": inspection.policy_rows(runtime),
            "source": runtime.store.label,
            "backend": runtime.store.kind,
            "prefix": runtime.settings.key_prefix,
        }
        try:
            context.update(self._rows(request, query, runtime))
        except StoreError as exc:
            context["store_error"] = str(exc)
        return TemplateResponse(request, "admin/ratelimit_app/buckets.html", context)

    def _rows(self, request: HttpRequest, query: str, runtime: Any) -> dict[str, Any]:
        if query:
            return {"rows": inspection.identity_buckets(query, runtime)}
        page = Paginator(inspection.live_keys(runtime), PAGE_SIZE).get_page(request.GET.get("p"))
        return {
            "rows": inspection.rows_for_keys(list(page.object_list), runtime),
            "page": page,
            "capped": page.paginator.count >= inspection.MAX_LISTED,
        }

    def reset_view(self, request: HttpRequest) -> HttpResponse:
        key = request.POST.get("key", "")
        try:
            policy = inspection.reset_key(key)
        except (ConfigError, StoreError) as exc:
            messages.error(request, f"Not reset: {exc}")
        else:
            messages.success(request, f"Reset bucket {key} (policy {policy}): it is full again.")
        target = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
        back = request.POST.get("q", "")
        return HttpResponseRedirect(target + ("?" + urlencode({"q": back}) if back else ""))
