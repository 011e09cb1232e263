"""The Django app: registers the system checks once Django is ready."""

from __future__ import annotations

from django.apps import AppConfig


class RateLimitAppConfig(AppConfig):
    name = "ratelimit_app"
    verbose_name = "Rate limiting"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from . import checks

        checks.register()
