"""``manage.py demo_user``: the demo's admin user, created once, so set-up can run again.

Django's ``createsuperuser --noinput`` fails when the user exists, which made the
README's set-up command fail the second time. The password is known to everyone who
reads the README, so the command refuses to run with ``DEBUG`` off (a deployment).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

USERNAME = PASSWORD = "demo"


class Command(BaseCommand):
    help = "Create the demo admin user (demo / demo) unless it exists. DEBUG only."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "refusing to create a user with a published password while DEBUG is off; "
                "use manage.py createsuperuser"
            )
        users = get_user_model()
        if users.objects.filter(username=USERNAME).exists():
            self.stdout.write(f"The admin user {USERNAME!r} exists already.")
            return
        users.objects.create_superuser(USERNAME, "demo@example.com", PASSWORD)
        self.stdout.write(f"Created the admin user {USERNAME!r} (password {PASSWORD!r}).")
