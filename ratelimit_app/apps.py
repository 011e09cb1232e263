"""The Django app: registers the system checks, and refuses to start on bad settings.

Servers such as gunicorn and uvicorn never run system checks, so a bad ``RATELIMIT``
would otherwise surface as a 500 on every limited request; ``ready()`` validates it once
with the checks' own parser and stops Django with every problem listed by its id.
"""

from __future__ import annotations

from django.apps import AppConfig


class RateLimitAppConfig(AppConfig):
    name = "ratelimit_app"
    verbose_name = "Rate limiting"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from . import checks

        checks.register()
        checks.refuse_bad_settings()
