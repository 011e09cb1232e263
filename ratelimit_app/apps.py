"""The Django app: registers the system checks, and refuses to start on bad settings.

Servers such as gunicorn and uvicorn never run system checks, so a bad ``RATELIMIT``
would otherwise surface as a 500 on every limited request; ``ready()`` validates it once
with the checks' own parser and stops Django with every problem listed by its id.
It also connects failed logins to the ``auth_failures`` policy.
"""

from __future__ import annotations

from django.apps import AppConfig


class RateLimitAppConfig(AppConfig):
    name = "ratelimit_app"
    verbose_name = "Rate limiting"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed

        from . import checks
        from .auth_failures import on_login_failed

        checks.register()
        checks.refuse_bad_settings()
        # a failed authenticate() charges the auth_failures policy, when there is one
        user_login_failed.connect(on_login_failed, dispatch_uid="ratelimit_auth_failures")
